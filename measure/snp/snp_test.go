package snp

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/ovmf"
)

func loadFirmware(tb testing.TB, rel string) (*ovmf.Firmware, []byte) {
	tb.Helper()
	img, err := os.ReadFile(testenv.SharedFile(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	fw, err := ovmf.Parse(img)
	if err != nil {
		tb.Fatal(err)
	}
	return fw, img
}

func TestCPUSignatures(t *testing.T) {
	for name, want := range map[string]uint32{
		"EPYC": 0x800f12, "EPYC-v4": 0x800f12, "EPYC-IBPB": 0x800f12, "EPYC-Rome": 0x830f10, "EPYC-Rome-v5": 0x830f10,
		"EPYC-Milan": 0xa00f11, "EPYC-Milan-v3": 0xa00f11, "EPYC-Genoa": 0xa10f10, "EPYC-Genoa-v2": 0xa10f10, "EPYC-Turin": 0xb00f00,
	} {
		got, err := CPUSignature(name)
		if err != nil || got != want {
			t.Errorf("CPUSignature(%q) = %#x, %v; want %#x", name, got, err, want)
		}
	}
	for _, bad := range []string{"EPYC-v5", "epyc", "EPYC-Milan-v0", "EPYC-Turin-v2", "Skylake", "EPYC-v04"} {
		if _, err := CPUSignature(bad); err == nil {
			t.Errorf("CPUSignature(%q) accepted", bad)
		}
	}
	if s, _ := Signature(25, 17, 0); s != 0xa10f10 {
		t.Errorf("Signature(25,17,0) = %#x", s)
	}
	if _, err := Signature(300, 0, 0); err == nil {
		t.Error("family 300 accepted")
	}
}

func TestParse(t *testing.T) {
	if v, err := ParseVMM("QEMU"); err != nil || v != QEMU {
		t.Errorf("ParseVMM(QEMU) = %v, %v", v, err)
	}
	if _, err := ParseVMM("kvm"); err == nil {
		t.Error("kvm accepted")
	}
	if _, err := ParseProfile("ec2-rdx0", QEMU); err == nil || !strings.Contains(err.Error(), "is for VMM ec2") {
		t.Errorf("profile for the wrong VMM: %v", err)
	}
	if p, err := ParseProfile("qemu-preinit2", QEMU); err != nil || p != ProfileQEMUPreInit2 {
		t.Errorf("ParseProfile = %v, %v", p, err)
	}
	if _, err := ParseMode("snp:svm"); err == nil {
		t.Error("bad mode accepted")
	}
}

// TestMatrixEqualsSingleDigests: the shared-prefix matrix gives exactly the
// digests of separate full computations, and --explain's last step is the
// digest.
func TestMatrixEqualsSingleDigests(t *testing.T) {
	fw, img := loadFirmware(t, "fixtures/firmware/amdsev/OVMF.amdsev.fd")
	k, err := HashKernel(strings.NewReader("kernel"), strings.NewReader("initrd"), "console=ttyS0")
	if err != nil {
		t.Fatal(err)
	}
	cpus := []CPU{{"EPYC-v4", 0x800f12}, {"EPYC-Genoa", 0xa10f10}}
	for _, mode := range []Mode{ModeSNP, ModeSEVES, ModeSEV} {
		base := Launch{Mode: mode, GuestFeatures: 1, Firmware: fw, Image: img, Kernel: &k}
		entries, err := Matrix(base, []VMM{QEMU, EC2, GCE}, cpus, []int{1, 3})
		if err != nil {
			t.Fatal(err)
		}
		want := map[Mode]int{ModeSNP: 2*2 + 2 + 2, ModeSEVES: 8, ModeSEV: 1}[mode]
		if len(entries) != want {
			t.Fatalf("%s: %d entries, want %d", mode, len(entries), want)
		}
		for _, e := range entries {
			l := base
			l.VMM, l.VCPUSig, l.VCPUs = e.VMM, e.CPU.Sig, e.VCPUs
			var last []byte
			l.Explain = func(s Step) { last = s.Digest }
			d, err := l.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d, e.Digest) || !bytes.Equal(last, d) {
				t.Errorf("%s %s: matrix %x, single %x, explain %x", mode, e.Name(), e.Digest, d, last)
			}
		}
	}
}

func TestHashKernel(t *testing.T) {
	k, err := HashKernel(strings.NewReader(""), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	// SHA-256("") for the kernel and the missing initrd; SHA-256("\x00") for the command line.
	if hex.EncodeToString(k.Initrd[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" ||
		hex.EncodeToString(k.Cmdline[:]) != "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" {
		t.Errorf("hashes %x %x", k.Initrd, k.Cmdline)
	}
	tb := k.Table()
	if tb[16] != 168 || tb[18+16] != 50 || !bytes.Equal(tb[168:], make([]byte, 8)) {
		t.Errorf("table layout %x", tb)
	}
}

func TestErrors(t *testing.T) {
	fw, img := loadFirmware(t, "fixtures/firmware/OVMF.fd")
	k, _ := HashKernel(strings.NewReader("k"), nil, "")
	for _, tt := range []struct {
		name string
		l    Launch
		want string
	}{
		{"kernel without SNP_KERNEL_HASHES", Launch{Mode: ModeSNP, VCPUs: 1, Firmware: fw, Image: img, Kernel: &k}, "no SNP_KERNEL_HASHES section"},
		{"kernel without hash table (SEV-ES)", Launch{Mode: ModeSEVES, VCPUs: 1, Firmware: fw, Image: img, Kernel: &k}, "no SEV hashes table"},
		{"no vCPUs", Launch{Mode: ModeSNP, Firmware: fw, Image: img}, "0 vCPUs"},
		{"short seed", Launch{Mode: ModeSNP, VCPUs: 1, Firmware: fw, OVMFHash: []byte{1}}, "want 48"},
		{"seed for SEV", Launch{Mode: ModeSEV, Firmware: fw, OVMFHash: make([]byte, 48)}, "only seeds mode snp"},
		{"no image", Launch{Mode: ModeSNP, VCPUs: 1, Firmware: fw}, "image is needed"},
		{"svsm without svsm", Launch{Mode: ModeSVSM, VCPUs: 1, Firmware: fw, Image: img}, "needs the SVSM image"},
	} {
		_, err := tt.l.Digest()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	noReset := *fw
	noReset.ResetEIP = 0
	if _, err := (&Launch{Mode: ModeSNP, VCPUs: 2, Firmware: &noReset, Image: img}).Digest(); err == nil || !strings.Contains(err.Error(), "SEV_ES_RESET_BLOCK") {
		t.Errorf("2 vCPUs without a reset block: %v", err)
	}
}

func BenchmarkDigestDebianOVMF4vCPU(b *testing.B) {
	_, img := loadFirmware(b, "fixtures/firmware/OVMF.fd")
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		fw, err := ovmf.Parse(img)
		if err != nil {
			b.Fatal(err)
		}
		l := Launch{Mode: ModeSNP, VMM: QEMU, VCPUs: 4, VCPUSig: 0x800f12, GuestFeatures: 1, Firmware: fw, Image: img}
		if _, err := l.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatrix21(b *testing.B) {
	_, img := loadFirmware(b, "fixtures/firmware/OVMF.fd")
	cpus := []CPU{{"EPYC-v4", 0x800f12}, {"EPYC-Milan", 0xa00f11}, {"EPYC-Genoa", 0xa10f10}}
	for b.Loop() {
		fw, _ := ovmf.Parse(img)
		e, err := Matrix(Launch{Mode: ModeSNP, GuestFeatures: 1, Firmware: fw, Image: img}, []VMM{QEMU}, cpus, []int{1, 2, 4, 8, 16, 32, 64})
		if err != nil || len(e) != 21 {
			b.Fatal(err, len(e))
		}
	}
}
