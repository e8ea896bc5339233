package snp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/refvalues"
)

// TestMeasureSpec checks the spec path against the primitives: a document
// made from digests the caller already has (as cvmkit release does with its
// inventory) equals one made by streaming the files (as measure snp does),
// and each entry equals a single Launch.Digest.
func TestMeasureSpec(t *testing.T) {
	fw, img := loadFirmware(t, "fixtures/firmware/amdsev/OVMF.amdsev.fd")
	kernel, initrd, cmd := "kernel bytes", "initrd bytes", "console=ttyS0 root=/dev/vda"
	streamed, err := HashKernel(strings.NewReader(kernel), strings.NewReader(initrd), cmd)
	if err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	boot, err := BootFromDigests(refvalues.File{Path: "image/vmlinuz", SHA256: sum(kernel)}, &refvalues.File{Path: "image/initrd.img", SHA256: sum(initrd)}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if boot.Hashes != streamed {
		t.Fatalf("hashes from digests %x, streamed %x", boot.Hashes, streamed)
	}
	spec := Spec{Mode: ModeSNP, VMMs: []VMM{QEMU}, CPUs: []CPU{{"EPYC-Milan", 0xa00f11}}, VCPUs: []int{1, 4}, GuestFeatures: 1, Policy: 0x30000,
		Firmware: Input{Data: img, File: refvalues.File{Path: "OVMF.amdsev.fd"}}, Boot: boot}
	res, err := Measure(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Doc.Measurements) != 2 || !res.Doc.KernelHashes || res.Doc.Policy != "0x30000" || res.Doc.Cmdline.Value != cmd {
		t.Fatalf("document %+v", res.Doc)
	}
	for i, n := range []int{1, 4} {
		l := Launch{Mode: ModeSNP, GuestFeatures: 1, Firmware: fw, Image: img, Kernel: &streamed, VMM: QEMU, VCPUSig: 0xa00f11, VCPUs: n}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Doc.Measurements[i].Digest; got != hex.EncodeToString(d) {
			t.Errorf("%d vCPUs: spec %s, launch %x", n, got, d)
		}
	}
	// Errors name the setting as the caller named it.
	spec.VCPUs = nil
	spec.Name = func(k string) string { return "platforms.snp[0]." + k }
	if _, err := Measure(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "platforms.snp[0].vcpus is required") {
		t.Errorf("no vCPUs: %v", err)
	}
}
