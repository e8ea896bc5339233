package tdx

import (
	"context"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/refvalues"
)

// TestKernelHandover: which kernel bytes reach a TD's firmware, per exact
// QEMU release, from hw/i386/x86-common.c's x86_load_linux history:
//   - a7542a38f399 "x86/loader: Don't update kernel header for CoCo VMs"
//     (first in 10.2.0): `if (!MACHINE(x86ms)->cgs && protocol > 0)
//     memcpy(setup, header, …)` — a TD's setup header is never patched;
//   - etc/boot/kernel (from 10.0): `fw_cfg_add_file(fw_cfg,
//     "etc/boot/kernel", kernel, kernel_size)`, the file unpatched, which
//     edk2 from 202502 loads;
//   - "x86/loader: only patch linux kernels" (10.0.0, 9.2.1, 7.2.16): the
//     `protocol > 0` condition; before it a file without "HdrS" got 0xA33F
//     and an offset at 0x20 (`stw_le_p(header + 0x20, 0xA33F)`).
func TestKernelHandover(t *testing.T) {
	for _, c := range []struct {
		v     string
		p     Profile
		linux bool
		want  KernelBlob // "" means refused
		err   string
	}{
		{"10.2.0", Edk2Stable202408, true, KernelUnpatched, ""}, // the reported defect: was qemu-patched
		{"10.2.1", "", true, KernelUnpatched, ""},
		{"10.2", Edk2Stable202408, true, KernelUnpatched, ""},
		{"11.0.0", Edk2Stable202408, false, KernelUnpatched, ""},
		{"10.1.0", Edk2Stable202502, true, KernelUnpatched, ""},
		{"10.0.0", Edk2Stable202508, true, KernelUnpatched, ""},
		{"10.1.0", Edk2Stable202408, true, KernelPatched, ""},
		{"10.1.0", Edk2Stable202408, false, KernelUnpatched, ""},
		{"9.2.0", Edk2Stable202502, true, KernelPatched, ""},
		{"9.2.1", Edk2Stable202502, true, KernelPatched, ""},
		{"9.2.1", Edk2Stable202502, false, KernelUnpatched, ""},
		{"9.2.0", Edk2Stable202502, false, "", "predates"},
		{"9.2", Edk2Stable202502, false, "", "give the exact version"},
		{"7.2.16", Edk2Stable202408, false, KernelUnpatched, ""},
		{"7.2.15", Edk2Stable202408, false, "", "predates"},
		{"8.0.4", Edk2Stable202408, false, "", "predates"},
		{"8.2.2", Edk2Stable202408, false, "", "cannot place"},
		{"9.1.3", Edk2Stable202408, false, "", "cannot place"},
		{"8.2.2", Edk2Stable202408, true, KernelPatched, ""},
	} {
		q, err := ParseQEMUVersion(c.v)
		if err != nil {
			t.Fatal(err)
		}
		got, why, err := KernelHandover(q, c.p, c.linux)
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("QEMU %s, %s, linux %v: %q (%s) %v; want %q %q", c.v, c.p, c.linux, got, why, err, c.want, c.err)
		}
	}
	for _, v := range []string{"9", "9.2.x", "10.1.50", "10.1.90", "5.2.0", "9.02.0", ""} {
		if _, err := ParseQEMUVersion(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

// TestKernelBlobFollowsQEMU: with QEMU 10.2.0 and edk2-stable202408.01
// firmware, RTMR1 is the unpatched kernel's (QEMU no longer patches a TD's
// header), equal to the value of --kernel-blob unpatched and not to 10.1.0's.
func TestKernelBlobFollowsQEMU(t *testing.T) {
	shared := testenv.Shared(t)
	fw := readShared(t, shared, "fixtures/firmware/trixie/OVMF.fd")
	kernel := readShared(t, shared, "fixtures/tdx/kernel/debian-linux-image-6.1.0-56-amd64_6.1.192-2/vmlinuz-6.1.0-56-amd64")
	rtmr1 := func(version string, blob KernelBlob) (string, string) {
		doc, _, err := Measure(context.Background(), Spec{Firmware: Input{Data: fw, File: refvalues.File{Path: "OVMF.fd"}}, Memory: 2 << 30, VCPUs: 2,
			Kernel: &Input{Data: kernel, File: refvalues.File{Path: "vmlinuz"}}, Cmdline: "console=ttyS0",
			QEMUVersion: version, Profile: Edk2Stable202408, KernelBlob: blob})
		if err != nil {
			t.Fatal(err)
		}
		return *doc.RTMR[1], doc.KernelBlob + ": " + doc.KernelBlobSource
	}
	got, why := rtmr1("10.2.0", "")
	want, _ := rtmr1("10.2.0", KernelUnpatched)
	old, oldWhy := rtmr1("10.1.0", "")
	if got != want || got == old || !strings.Contains(why, "a7542a38f399") || !strings.HasPrefix(oldWhy, "qemu-patched") {
		t.Fatalf("QEMU 10.2.0: %s (%s); unpatched %s; QEMU 10.1.0 %s (%s)", got, why, want, old, oldWhy)
	}
}
