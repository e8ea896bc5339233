package tdx

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/refvalues"
)

// tdxVector is one entry of ../shared/vectors/tdx.json.
type tdxVector struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Params      map[string]any  `json:"params"`
	Expected    json.RawMessage `json:"expected"`
	ExpectError bool            `json:"expect_error"`
	Events      []string        `json:"events"`
}

func loadTDXVectors(t *testing.T) (string, []tdxVector) {
	t.Helper()
	shared := testenv.Shared(t)
	b, err := os.ReadFile(testenv.SharedFile(t, "vectors/tdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []tdxVector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatal("no TDX vectors")
	}
	return shared, doc.Vectors
}

func (v tdxVector) str(k string) string {
	s, _ := v.Params[k].(string)
	return s
}

func (v tdxVector) mib(k string) uint64 {
	f, _ := v.Params[k].(float64)
	return uint64(f) << 20
}

func readShared(t *testing.T, shared, rel string) []byte {
	t.Helper()
	if rel == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(shared, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// TestTDXComponentVectors checks the per-component vectors (MRTD, TD HOB,
// CFV, ACPI loader/RSDP, Authenticode) computed by independent
// implementations (each vector names its oracles).
func TestTDXComponentVectors(t *testing.T) {
	shared, vs := loadTDXVectors(t)
	for _, v := range vs {
		t.Run(v.ID, func(t *testing.T) {
			var want string
			json.Unmarshal(v.Expected, &want)
			switch v.Kind {
			case "mrtd":
				img := readShared(t, shared, v.str("firmware"))
				td, err := ovmf.ParseTDVF(img)
				if v.ExpectError {
					if err == nil {
						t.Fatal("firmware accepted; the independent tools reject it")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got, _ := MRTD(context.Background(), img, td, PageOrder(v.str("page_order")))
				if hexOf(got[:]) != want {
					t.Fatalf("MRTD %x, want %s", got, want)
				}
			case "td_hob":
				img := readShared(t, shared, v.str("firmware"))
				td, err := ovmf.ParseTDVF(img)
				if err != nil {
					t.Fatal(err)
				}
				got, err := TDHOBDigest(td, v.mib("memory_mib"))
				if err != nil || hexOf(got[:]) != want {
					t.Fatalf("TD HOB %x (%v), want %s", got, err, want)
				}
			case "cfv":
				img := readShared(t, shared, v.str("firmware"))
				td, _ := ovmf.ParseTDVF(img)
				got, err := CFVDigest(img, td)
				if err != nil || hexOf(got[:]) != want {
					t.Fatalf("CFV %x (%v), want %s", got, err, want)
				}
			default:
				t.Skipf("kind %s is checked by TestTDXRegisterVectors", v.Kind)
			}
		})
	}
}

var _ = sha512.Sum384

// inputsFor builds prediction inputs from a vector's parameters.
func inputsFor(t *testing.T, shared string, v tdxVector) Inputs {
	in := Inputs{Profile: Profile(v.str("edk2_profile")), Memory: v.mib("memory_mib"), Cmdline: v.str("cmdline"), GuestMeasuresCC: true, KernelBlob: KernelPatched}
	if v.str("kernel_blob") == "unpatched" {
		in.KernelBlob = KernelUnpatched
	}
	if fw := v.str("firmware"); fw != "" {
		in.Image = readShared(t, shared, fw)
		td, err := ovmf.ParseTDVF(in.Image)
		if err != nil {
			t.Fatal(err)
		}
		in.TDVF = td
	} else {
		// RTMR1/2 vectors do not depend on the firmware; any TDVF will do.
		in.Image = readShared(t, shared, "fixtures/firmware/OVMF.fd")
		in.TDVF, _ = ovmf.ParseTDVF(in.Image)
	}
	in.ACPITables = readShared(t, shared, v.str("acpi_tables"))
	in.Kernel = readShared(t, shared, v.str("kernel"))
	if in.Kernel == nil && v.str("boot") == "qemu-direct-kernel" {
		// RTMR2 vectors name no kernel: any bzImage gives the same RTMR2.
		in.Kernel = readShared(t, shared, "fixtures/tdx/kernel/debian-linux-image-6.1.0-56-amd64_6.1.192-2/vmlinuz-6.1.0-56-amd64")
	}
	if r := v.str("initrd"); r != "" {
		in.Initrd, in.HasInitrd = readShared(t, shared, r), true
	}
	return in
}

// TestTDXRegisterVectors checks ACPI, Authenticode, RTMR and whole-launch
// vectors; each names the independent implementations that agree on it.
func TestTDXRegisterVectors(t *testing.T) {
	shared, vs := loadTDXVectors(t)
	for _, v := range vs {
		t.Run(v.ID, func(t *testing.T) {
			var want string
			json.Unmarshal(v.Expected, &want)
			switch v.Kind {
			case "acpi_loader_rsdp":
				var w map[string]string
				json.Unmarshal(v.Expected, &w)
				a, err := DeriveACPI(readShared(t, shared, v.str("acpi_tables")))
				if err != nil {
					t.Fatal(err)
				}
				for name, b := range map[string][]byte{"table_loader": a.TableLoader, "rsdp": a.RSDP, "tables": a.Tables} {
					if got := sha512.Sum384(b); hexOf(got[:]) != w[name] {
						t.Errorf("%s %x, want %s", name, got, w[name])
					}
				}
			case "kernel_authenticode":
				k := readShared(t, shared, v.str("kernel"))
				if v.Params["qemu_header_patch"] == true {
					var initrd []byte
					if r := v.str("initrd"); r != "" {
						initrd = readShared(t, shared, r)
					}
					var err error
					if k, err = PatchKernel(k, len(initrd), v.str("initrd") != "", v.mib("memory_mib"), ""); err != nil {
						t.Fatal(err)
					}
				}
				got, err := Authenticode(k)
				if err != nil || hexOf(got[:]) != want {
					t.Fatalf("Authenticode %x (%v), want %s", got, err, want)
				}
			case "rtmr0", "rtmr1", "rtmr2":
				reg := int(v.Kind[4] - '0')
				p, err := Predict(inputsFor(t, shared, v))
				if err != nil {
					t.Fatal(err)
				}
				if p.RTMR[reg] == nil {
					t.Fatalf("RTMR%d not computed: %s", reg, p.NotComputable[reg])
				}
				if got := hexOf(p.RTMR[reg][:]); got != want {
					var evs []string
					for _, e := range p.Events {
						if e.RTMR == reg {
							evs = append(evs, hexOf(e.Digest[:])+" "+e.Description)
						}
					}
					t.Fatalf("RTMR%d %s, want %s\nevents:\n%s\nwant events:\n%s", reg, got, want, strings.Join(evs, "\n"), strings.Join(v.Events, "\n"))
				}
			case "all":
				var w map[string]string
				json.Unmarshal(v.Expected, &w)
				in := inputsFor(t, shared, v)
				p, err := Predict(in)
				if err != nil {
					t.Fatal(err)
				}
				mrtd, _ := MRTD(context.Background(), in.Image, in.TDVF, PageOrder(v.str("page_order")))
				got := map[string]string{"mrtd": hexOf(mrtd[:])}
				for i, r := range p.RTMR {
					if r != nil {
						got[fmt.Sprintf("rtmr%d", i)] = hexOf(r[:])
					}
				}
				for k := range w {
					if got[k] != w[k] {
						t.Errorf("%s = %s, want %s", k, got[k], w[k])
					}
				}
			}
		})
	}
}

// TestEmptyInitrdIsNoInitrd: an empty -initrd gives the RTMR2 of no initrd
// (edk2-stable202502's X86QemuLoadImageLib appends " initrd=initrd" only
// for an initrd size > 0, and QemuKernelLoaderFsDxe publishes no blob of
// size 0, so the EFI stub measures no initrd): 36482cf4… for
// "console=ttyS0" with Debian's 6.1 kernel told to measure; cvmkit gave
// 72e1ff3e… (a " initrd=initrd" suffix and an initrd event) before.
func TestEmptyInitrdIsNoInitrd(t *testing.T) {
	shared := testenv.Shared(t)
	fw := readShared(t, shared, "fixtures/firmware/trixie/OVMF.fd")
	kernel := readShared(t, shared, "fixtures/tdx/kernel/debian-linux-image-6.1.0-56-amd64_6.1.192-2/vmlinuz-6.1.0-56-amd64")
	yes := true
	rtmr2 := func(initrd *Input) string {
		doc, _, err := Measure(context.Background(), Spec{Firmware: Input{Data: fw, File: refvalues.File{Path: "OVMF.fd"}}, Memory: 2 << 30, VCPUs: 2,
			Kernel: &Input{Data: kernel, File: refvalues.File{Path: "vmlinuz"}}, Initrd: initrd, Cmdline: "console=ttyS0",
			QEMUVersion: "9.2.0", Profile: Edk2Stable202502, GuestMeasuresRTMR2: &yes})
		if err != nil {
			t.Fatal(err)
		}
		return *doc.RTMR[2]
	}
	none := rtmr2(nil)
	empty := rtmr2(&Input{Data: []byte{}, File: refvalues.File{Path: "empty.img"}})
	const want = "36482cf4d077603c0123f112545737a9b4f47ee76b20e1bc943e1ea5a03df893ebc47967930dcac5a72ab07b1122d47a"
	if none != want || empty != want {
		t.Fatalf("RTMR2 without an initrd %s, with an empty one %s, want %s", none, empty, want)
	}
}
