package tdx

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/refvalues"
)

// largestTDVF is the most work ParseTDVF lets through: 64 sections that
// fill the 4 GiB below the firmware's end (2^20 pages added), the first
// MR.EXTEND over the largest size a firmware image can have (about
// 0.3 GiB of hashing in all), in td-shim's metadata layout.
func largestTDVF(t *testing.T) ([]byte, *ovmf.TDVF) {
	t.Helper()
	const n, size = 64, ovmf.MaxSize
	img := make([]byte, 0x4000)
	guid := ovmf.MustGUID("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae") // td-shim TDX metadata GUID
	copy(img[0x100:], guid[:])
	d := img[0x110:]
	copy(d, "TDVF")
	binary.LittleEndian.PutUint32(d[4:], 16+32*n)
	binary.LittleEndian.PutUint32(d[8:], 1)
	binary.LittleEndian.PutUint32(d[12:], n)
	for i := 0; i < n; i++ {
		e := d[16+32*i:]
		binary.LittleEndian.PutUint64(e[8:], uint64(i)*size)
		binary.LittleEndian.PutUint64(e[16:], size)
		binary.LittleEndian.PutUint32(e[24:], uint32(ovmf.TDVFPermMem))
		if i == 0 {
			binary.LittleEndian.PutUint32(e[28:], ovmf.AttrMRExtend)
		}
	}
	binary.LittleEndian.PutUint32(img[len(img)-0x20:], 0x100)
	td, err := ovmf.ParseTDVF(img)
	if err != nil {
		t.Fatal(err)
	}
	return img, td
}

// TestMRTDStopsOnCancel: an interrupt ends the largest computation the
// parser allows within a second (the CLI passes its signal context).
func TestMRTDStopsOnCancel(t *testing.T) {
	img, td := largestTDVF(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := MRTD(ctx, img, td, SinglePass)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("MRTD over %d sections: %v, want it cancelled", len(td.Sections), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancelled after %v", d)
	}
}

// TestHostileTDVFRefusedFast: the metadata that made `measure tdx` run for
// hours (1 TiB of TEMP_MEM) is refused while parsing.
func TestHostileTDVFRefusedFast(t *testing.T) {
	img, _ := largestTDVF(t)
	e := img[0x110+16:]
	binary.LittleEndian.PutUint64(e[16:], 1<<40)
	binary.LittleEndian.PutUint32(e[24:], uint32(ovmf.TDVFTempMem))
	binary.LittleEndian.PutUint32(e[28:], 0)
	start := time.Now()
	if _, err := ovmf.ParseTDVF(img); err == nil {
		t.Fatal("1 TiB TEMP_MEM accepted")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refused after %v", d)
	}
}

// TestHostileTDVFExtends: 64 MR.EXTEND sections of 64 MiB each (6 GiB of
// hashing: 33.6 s in the hostile-input pass, from a 16 KiB file) are
// refused while parsing.
func TestHostileTDVFExtends(t *testing.T) {
	img, _ := largestTDVF(t)
	for i := 1; i < 64; i++ {
		binary.LittleEndian.PutUint32(img[0x110+16+32*i+28:], ovmf.AttrMRExtend)
	}
	if _, err := ovmf.ParseTDVF(img); err == nil || !strings.Contains(err.Error(), "MR.EXTEND sections add up to") {
		t.Fatalf("6 GiB of MR.EXTEND: %v", err)
	}
}

// TestStructureBeforeMeasuring: a TDVF without the CFV section Measure
// needs is refused before MRTD is computed (the refusal came after 33.6 s
// of hashing): with a cancelled context the error is still the CFV one.
func TestStructureBeforeMeasuring(t *testing.T) {
	img, _ := largestTDVF(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := Measure(ctx, Spec{Firmware: Input{Data: img, File: refvalues.File{Path: "hostile.fd"}}})
	if err == nil || !strings.Contains(err.Error(), "no CFV section") {
		t.Fatalf("%v", err)
	}
}
