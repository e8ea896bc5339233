package tdx

import (
	"context"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/ovmf"
)

// BenchmarkMRTDDebianBothOrders: MRTD of the 2 MiB Debian OVMF.fd for both
// page orders (the firmware parsed each time).
func BenchmarkMRTDDebianBothOrders(b *testing.B) {
	img := readShared(&testing.T{}, testenv.Shared(b), "fixtures/firmware/OVMF.fd")
	b.SetBytes(int64(2 * len(img)))
	for b.Loop() {
		td, err := ovmf.ParseTDVF(img)
		if err != nil {
			b.Fatal(err)
		}
		MRTD(context.Background(), img, td, SinglePass)
		MRTD(context.Background(), img, td, TwoPass)
	}
}

// BenchmarkFullLaunch: MRTD (both orders) and RTMR0–3 for trixie's OVMF and
// the real 8 MiB Debian kernel with a 1 MiB initrd, in one process.
func BenchmarkFullLaunch(b *testing.B) {
	t := &testing.T{}
	shared := testenv.Shared(b)
	img := readShared(t, shared, "fixtures/firmware/trixie/OVMF.fd")
	acpi := readShared(t, shared, "fixtures/tdx/acpi/oasis-q35-cpu1-mem2048.tables.bin")
	kernel := readShared(t, shared, debianKernel)
	initrd := readShared(t, shared, "fixtures/tdx/initrd/zero-1MiB.img")
	for b.Loop() {
		td, err := ovmf.ParseTDVF(img)
		if err != nil {
			b.Fatal(err)
		}
		MRTD(context.Background(), img, td, SinglePass)
		MRTD(context.Background(), img, td, TwoPass)
		p, err := Predict(Inputs{Image: img, TDVF: td, Profile: Edk2Stable202502, Memory: 4 << 30, ACPITables: acpi,
			Kernel: kernel, Initrd: initrd, HasInitrd: true, Cmdline: "console=ttyS0", KernelBlob: KernelPatched, GuestMeasuresCC: true})
		if err != nil || p.RTMR[0] == nil || p.RTMR[2] == nil {
			b.Fatal(err)
		}
	}
}
