package tdx

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/qemu"
)

// cmdlineVectors are testdata/qemu_cmdline_vectors.json, computed by
// testdata/qemu_cmdline_vectors.py: an independent Python implementation
// (standard library only) of QEMU's setup-header patch with vga=, of
// Authenticode and of edk2's byte-wise LoadOptions, which first checks
// itself against the shared independent vectors.
type cmdlineVectors struct {
	Kernel  string `json:"kernel"`
	Vectors []struct {
		Name, Cmdline, Initrd string
		MemoryMiB             uint64 `json:"memory_mib"`
		VidMode               string `json:"vid_mode"`
		KernelAuthenticode    string `json:"kernel_authenticode"`
		RTMR1                 string `json:"rtmr1"`
		LoadOptionsSize       int    `json:"load_options_size"`
		LoadOptionsSHA384     string `json:"load_options_sha384"`
		RTMR2                 string `json:"rtmr2"`
	} `json:"vectors"`
	Refused []struct{ Cmdline string } `json:"refused"`
}

func loadCmdlineVectors(t *testing.T) (string, *cmdlineVectors) {
	t.Helper()
	shared := testenv.Shared(t)
	b, err := os.ReadFile("testdata/qemu_cmdline_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var cv cmdlineVectors
	if err := json.Unmarshal(b, &cv); err != nil {
		t.Fatal(err)
	}
	return shared, &cv
}

// TestQEMUCmdlineVectors: vga= forms change the kernel QEMU hands over
// (vid_mode), so RTMR1; non-ASCII command lines are widened byte by byte,
// so RTMR2; both equal the independent computation.
func TestQEMUCmdlineVectors(t *testing.T) {
	shared, cv := loadCmdlineVectors(t)
	kernel := readShared(t, shared, cv.Kernel)
	image := readShared(t, shared, "fixtures/firmware/OVMF.fd")
	td, err := ovmf.ParseTDVF(image)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range cv.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			in := Inputs{Image: image, TDVF: td, Profile: Edk2Stable202502, Memory: v.MemoryMiB << 20, Kernel: kernel,
				KernelBlob: KernelPatched, Cmdline: v.Cmdline, GuestMeasuresCC: v.RTMR2 != ""}
			if v.Initrd != "" {
				in.Initrd, in.HasInitrd = readShared(t, shared, v.Initrd), true
			}
			p, err := Predict(in)
			if err != nil {
				t.Fatal(err)
			}
			if v.RTMR1 != "" {
				mode, ok, err := qemu.VidMode(v.Cmdline)
				if err != nil || !ok || v.VidMode != "0x"+strings.TrimPrefix(strings.ToLower(hex16(mode)), "0x") {
					t.Errorf("vid_mode %#04x (%v %v), want %s", mode, ok, err, v.VidMode)
				}
				if got := hexOf(p.Events[eventIndex(t, p, 1, EvEFIBootServicesApp)].Digest[:]); got != v.KernelAuthenticode {
					t.Errorf("kernel event %s, want %s", got, v.KernelAuthenticode)
				}
				if got := hexOf(p.RTMR[1][:]); got != v.RTMR1 {
					t.Errorf("RTMR1 %s, want %s", got, v.RTMR1)
				}
			}
			if v.RTMR2 != "" {
				lo := LoadOptions(p.LoadOptions)
				if len(lo) != v.LoadOptionsSize {
					t.Errorf("LoadOptionsSize %d, want %d", len(lo), v.LoadOptionsSize)
				}
				if got := hexOf(p.Events[eventIndex(t, p, 2, EvEventTag)].Digest[:]); got != v.LoadOptionsSHA384 {
					t.Errorf("LoadOptions event %s, want %s", got, v.LoadOptionsSHA384)
				}
				if got := hexOf(p.RTMR[2][:]); got != v.RTMR2 {
					t.Errorf("RTMR2 %s, want %s", got, v.RTMR2)
				}
			}
		})
	}
	for _, r := range cv.Refused {
		in := Inputs{Image: image, TDVF: td, Profile: Edk2Stable202502, Memory: 2 << 30, Kernel: kernel, KernelBlob: KernelPatched, Cmdline: r.Cmdline}
		if _, err := Predict(in); !errors.Is(err, qemu.ErrInvalidVGA) {
			t.Errorf("%q: %v, want QEMU's refusal", r.Cmdline, err)
		}
		// Not only with the patched blob: QEMU exits whatever it hands over.
		in.KernelBlob = KernelUnpatched
		if _, err := Predict(in); !errors.Is(err, qemu.ErrInvalidVGA) {
			t.Errorf("%q (unpatched blob): %v, want QEMU's refusal", r.Cmdline, err)
		}
	}
}

func hex16(v uint16) string {
	const digits = "0123456789abcdef"
	return "0x" + string([]byte{digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15]})
}

func eventIndex(t *testing.T, p *Prediction, rtmr int, typ uint32) int {
	t.Helper()
	for i, e := range p.Events {
		if e.RTMR == rtmr && e.Type == typ {
			return i
		}
	}
	t.Fatalf("no event of type %#x in RTMR%d", typ, rtmr)
	return 0
}

// TestQEMURefusesLikeVidMode runs the real qemu-system-x86_64 on every
// vector's command line: QEMU starts (paused, -S) exactly for those
// VidMode accepts and exits with "invalid 'vga=' kernel parameter" for the
// refused ones.
func TestQEMURefusesLikeVidMode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU once per command line (-short)")
	}
	bin := testenv.Tool(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	shared, cv := loadCmdlineVectors(t)
	kernel := testenv.SharedFile(t, cv.Kernel)
	_ = shared
	var lines []string
	for _, v := range cv.Vectors {
		if v.RTMR1 != "" {
			lines = append(lines, v.Cmdline)
		}
	}
	for _, r := range cv.Refused {
		lines = append(lines, r.Cmdline)
	}
	for _, l := range lines {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		cmd := exec.CommandContext(ctx, bin, "-machine", "q35", "-accel", "tcg", "-m", "512M", "-display", "none", "-nodefaults", "-S", "-kernel", kernel, "-append", l)
		out, err := cmd.CombinedOutput()
		cancel()
		qemuRefused := strings.Contains(string(out), "invalid 'vga=' kernel parameter")
		if !qemuRefused && ctx.Err() == nil {
			t.Fatalf("%q: qemu neither started nor refused vga=: %v\n%s", l, err, out)
		}
		_, _, vmErr := qemu.VidMode(l)
		if qemuRefused != (vmErr != nil) {
			t.Errorf("%q: QEMU refused=%v, cvmkit refused=%v (%v)", l, qemuRefused, vmErr != nil, vmErr)
		}
	}
}
