package tdx

import (
	"bytes"
	"crypto/sha512"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	saferwall "github.com/saferwall/pe"
)

const debianKernel = "fixtures/tdx/kernel/debian-linux-image-6.1.0-56-amd64_6.1.192-2/vmlinuz-6.1.0-56-amd64"

// systemd-boot-efi (Debian) provides real EFI PE files and the UKI stub.
const stubDir = "/usr/lib/systemd/boot/efi"

func saferwallHash(t *testing.T, img []byte) []byte {
	t.Helper()
	f, err := saferwall.NewBytes(img, &saferwall.Options{Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Parse(); err != nil {
		t.Fatal(err)
	}
	return f.AuthentihashExt(sha512.New384())[0]
}

// buildUKI makes a unified kernel image from systemd's stub with objcopy,
// the classic way (systemd-stub(7)).
func buildUKI(t *testing.T, kernel []byte, cmdline string, initrd []byte) []byte {
	t.Helper()
	objcopy := testenv.Tool(t, "objcopy", "apt-get install binutils")
	stub := filepath.Join(stubDir, "linuxx64.efi.stub")
	if _, err := os.Stat(stub); err != nil {
		testenv.Tool(t, "cvmkit-no-systemd-stub", "apt-get install systemd-boot-efi (for "+stub+")")
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	out := filepath.Join(dir, "uki.efi")
	cmd := exec.Command(objcopy,
		"--add-section", ".osrel="+write("os-release", []byte("ID=cvmkit\n")), "--change-section-vma", ".osrel=0x20000",
		"--add-section", ".cmdline="+write("cmdline", []byte(cmdline)), "--change-section-vma", ".cmdline=0x30000",
		"--add-section", ".linux="+write("vmlinuz", kernel), "--change-section-vma", ".linux=0x2000000",
		"--add-section", ".initrd="+write("initrd", initrd), "--change-section-vma", ".initrd=0x3000000",
		stub, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuthenticodeMatchesSaferwall cross-checks the edk2-style hash with
// github.com/saferwall/pe, an independent PE parser, on real PE files: the
// signed Debian kernel as is and after QEMU's header patch, systemd's EFI
// binaries, and a UKI.
func TestAuthenticodeMatchesSaferwall(t *testing.T) {
	kernel := readShared(t, testenv.Shared(t), debianKernel)
	files := map[string][]byte{"debian vmlinuz": kernel}
	for _, c := range []struct {
		initrd int
		mem    uint64
	}{{0, 2 << 30}, {1 << 20, 1 << 30}, {3 << 20, 8 << 30}} {
		p, err := PatchKernel(kernel, c.initrd, c.initrd > 0, c.mem, "")
		if err != nil {
			t.Fatal(err)
		}
		files["vmlinuz patched"+strings.Repeat("+", c.initrd>>20)] = p
		// The prediction hashes the patched kernel in place, with only
		// its first bytes copied: the same hash as of the patched copy
		// (which saferwall checks below).
		head, err := patchHead(kernel, c.initrd, c.initrd > 0, c.mem, "")
		if err != nil {
			t.Fatal(err)
		}
		inPlace, err1 := authenticodeWithHead(kernel, head)
		copied, err2 := Authenticode(p)
		if err1 != nil || err2 != nil || inPlace != copied {
			t.Fatalf("initrd %d, memory %d: in place %x (%v), copy %x (%v)", c.initrd, c.mem, inPlace, err1, copied, err2)
		}
	}
	for _, name := range []string{"linuxx64.efi.stub", "systemd-bootx64.efi"} {
		b, err := os.ReadFile(filepath.Join(stubDir, name))
		if err != nil {
			testenv.Tool(t, "cvmkit-no-"+name, "apt-get install systemd-boot-efi")
		}
		files[name] = b
	}
	files["uki"] = buildUKI(t, kernel, "console=ttyS0", []byte("initrd"))
	for name, img := range files {
		got, err := Authenticode(img)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := saferwallHash(t, img); !bytes.Equal(got[:], want) {
			t.Errorf("%s: cvmkit %x, saferwall %x", name, got, want)
		}
	}
}

// TestUKIEvents: a UKI given as -kernel is measured as is, then its .linux
// section; its .cmdline and .initrd stand in for -append and -initrd.
func TestUKIEvents(t *testing.T) {
	shared := testenv.Shared(t)
	kernel := readShared(t, shared, debianKernel)
	uki := buildUKI(t, kernel, "console=ttyS0 quiet\n", []byte("uki initrd"))
	img := readShared(t, shared, "fixtures/firmware/trixie/OVMF.fd")
	td, _ := ovmf.ParseTDVF(img)
	p, err := Predict(Inputs{Image: img, TDVF: td, Profile: Edk2Stable202502, Memory: 2 << 30, Kernel: uki, GuestMeasuresCC: true})
	if err != nil {
		t.Fatal(err)
	}
	if !p.UKI || p.LoadOptions != "console=ttyS0 quiet" {
		t.Fatalf("UKI %v, LoadOptions %q", p.UKI, p.LoadOptions)
	}
	var descs []string
	for _, e := range p.Events {
		if e.RTMR >= 1 {
			descs = append(descs, e.Description)
		}
	}
	want := "UKI|Calling EFI Application from Boot Option|separator (ReadyToBoot)|UKI .linux|Exit Boot Services Invocation|Exit Boot Services Returned with Success|LoadOptions (kernel command line)|initrd"
	if got := strings.Join(descs, "|"); got != want {
		t.Fatalf("events\n%s\nwant\n%s", got, want)
	}
	linuxHash, _ := Authenticode(kernel)
	if p.Events[len(p.Events)-5].Digest != linuxHash {
		t.Error(".linux event is not the embedded kernel's hash")
	}
	if p.Events[len(p.Events)-1].Digest != sha512.Sum384([]byte("uki initrd")) {
		t.Error("initrd event is not the UKI's .initrd")
	}
}

func TestParsePEErrors(t *testing.T) {
	kernel := readShared(t, testenv.Shared(t), debianKernel)
	for name, img := range map[string][]byte{
		"empty":        nil,
		"not MZ":       []byte(strings.Repeat("x", 128)),
		"pe past end":  append([]byte("MZ"), make([]byte, 62)...),
		"truncated":    kernel[:0x300],
		"cert outside": func() []byte { b := bytes.Clone(kernel); p, _ := ParsePE(b); b[p.secDirOff+6] = 0xff; return b }(),
	} {
		if _, err := Authenticode(img); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := PatchKernel([]byte("MZ"), 0, false, 1<<30, ""); err == nil {
		t.Error("patched a non-bzImage")
	}
}

func FuzzParsePE(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(testenv.SharedDir(f), debianKernel)); err == nil {
		f.Add(b[:8192])
	} else {
		testenv.Shared(f)
	}
	if b, err := os.ReadFile(filepath.Join(stubDir, "linuxx64.efi.stub")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		p, err := ParsePE(img)
		if err != nil {
			return
		}
		h := sha512.New384()
		p.hash(h, spliced{img: img}) // must not panic on any accepted image
		for _, s := range p.Sections {
			p.Section(img, s.Name)
		}
		if IsBzImage(img) {
			// Hashing the patched header in place equals hashing a patched
			// copy, or both refuse the image.
			whole, err := PatchKernel(img, 4096, true, 2<<30, "")
			if err != nil {
				return
			}
			want, err1 := Authenticode(whole)
			head, _ := patchHead(img, 4096, true, 2<<30, "")
			got, err2 := authenticodeWithHead(img, head)
			if (err1 == nil) != (err2 == nil) || got != want {
				t.Fatalf("in place %x (%v), on a copy %x (%v)", got, err2, want, err1)
			}
		}
	})
}
