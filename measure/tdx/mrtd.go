// Package tdx computes Intel TDX launch measurements for TDVF/OVMF firmware
// under QEMU/KVM: MRTD from the firmware's TDX metadata, and RTMR0–3 by
// predicting the CC event log that the firmware and the Linux EFI stub
// write for a direct kernel boot (-kernel/-initrd/-append). It also parses
// and replays a CC event log (the CCEL ACPI table's log) to compare a real
// launch with the prediction.
//
// References: Intel TDX Module Base Architecture Specification
// (348549-004), §12 "Measurement and Attestation" (TDH.MEM.PAGE.ADD and
// TDH.MR.EXTEND update MRTD; RTMR extension); Intel TDX Virtual Firmware
// Design Guide (rev 1.01) §11 (metadata), §10 (TD HOB); TCG PC Client
// Platform Firmware Profile 1.06 and UEFI 2.10 §38.4 (CC measurement, event
// log format, MR index mapping); edk2 OvmfPkg (TdxHelperLib, QemuKernelLoaderFsDxe,
// X86QemuLoadImageLib, QemuFwCfgAcpiPlatformDxe), SecurityPkg
// (DxeTpm2MeasureBootLib, Tcg2Dxe); QEMU hw/i386/tdvf-hob.c, tdx.c,
// x86-common.c, hw/acpi/bios-linker-loader.c.
//
// Everything here is computation over bytes: no files, network or clock.
package tdx

import (
	"context"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/cvmkit/cvmkit/measure/ovmf"
)

// DigestSize is the size of MRTD and the RTMRs (SHA-384).
const DigestSize = 48

// PageOrder is how the host adds and measures the firmware's pages.
type PageOrder string

const (
	// SinglePass: for each page, TDH.MEM.PAGE.ADD then its 16
	// TDH.MR.EXTENDs (upstream KVM, QEMU 9.0 and later).
	SinglePass PageOrder = "single-pass"
	// TwoPass: per section, every page's PAGE.ADD first, then every
	// MR.EXTEND (QEMU 8.x, including Ubuntu 24.04's TDX QEMU 8.2.2).
	TwoPass PageOrder = "two-pass"
)

// PageOrders lists both orders, single-pass first.
var PageOrders = []PageOrder{SinglePass, TwoPass}

// ParsePageOrder accepts "single-pass" and "two-pass".
func ParsePageOrder(s string) (PageOrder, error) {
	switch p := PageOrder(s); p {
	case SinglePass, TwoPass:
		return p, nil
	}
	return "", fmt.Errorf("unknown page order %q; want single-pass or two-pass", s)
}

// PageOrderForQEMU returns the page order of a QEMU version ("8.2.2",
// "9.2.0"): two-pass before 9.0, single-pass from 9.0.
func PageOrderForQEMU(major int) PageOrder {
	if major < 9 {
		return TwoPass
	}
	return SinglePass
}

// MRTD computes the TD measurement register after the firmware is loaded
// (TDX module spec §12.2.1): the SHA-384 over 128-byte records
//
//	TDH.MEM.PAGE.ADD:  "MEM.PAGE.ADD" ‖ pad to 16 ‖ u64 GPA ‖ zeros to 128
//	TDH.MR.EXTEND:     "MR.EXTEND"    ‖ pad to 16 ‖ u64 GPA ‖ zeros to 128,
//	                   then the 256 bytes of the chunk at GPA
//
// for every page of every section (PAGE.AUG sections are not added), with
// MR.EXTEND for sections that have the MR.EXTEND attribute. The image must
// be the one ParseTDVF accepted.
//
// ParseTDVF bounds the work (every section ends at or below 4 GiB, so at
// most 2^20 pages; MR.EXTEND sections at most ovmf.MaxSize each); the
// context is checked every ctxPages pages, so an interrupt ends even the
// largest computation at once.
func MRTD(ctx context.Context, image []byte, t *ovmf.TDVF, order PageOrder) ([DigestSize]byte, error) {
	var out [DigestSize]byte
	h := sha512.New384()
	check := func(p uint64) error {
		if p%ctxPages == 0 {
			return ctx.Err()
		}
		return nil
	}
	for _, s := range t.Sections {
		pages := s.MemoryDataSize / ovmf.PageSize
		add := s.Attributes&ovmf.AttrPageAug == 0
		extend := s.Attributes&ovmf.AttrMRExtend != 0
		switch order {
		case TwoPass:
			if add {
				for p := uint64(0); p < pages; p++ {
					if err := check(p); err != nil {
						return out, err
					}
					pageAdd(h, s.MemoryAddress+p*ovmf.PageSize)
				}
			}
			if extend {
				for p := uint64(0); p < pages; p++ {
					if err := check(p); err != nil {
						return out, err
					}
					mrExtend(h, image, s, p)
				}
			}
		default:
			for p := uint64(0); p < pages; p++ {
				if err := check(p); err != nil {
					return out, err
				}
				if add {
					pageAdd(h, s.MemoryAddress+p*ovmf.PageSize)
				}
				if extend {
					mrExtend(h, image, s, p)
				}
			}
		}
	}
	h.Sum(out[:0])
	return out, nil
}

// ctxPages is how many pages MRTD measures between context checks (at
// most ~6 MiB of hashing, a few milliseconds).
const ctxPages = 1024

func pageAdd(h hash.Hash, gpa uint64) {
	var rec [128]byte
	copy(rec[:], "MEM.PAGE.ADD")
	binary.LittleEndian.PutUint64(rec[16:], gpa)
	h.Write(rec[:])
}

// mrExtend measures page p of section s in 16 chunks of 256 bytes; bytes
// past RawDataSize are zero (the host zero-fills the rest of the section).
func mrExtend(h hash.Hash, image []byte, s ovmf.TDVFSection, p uint64) {
	var rec [128]byte
	var chunk [256]byte
	copy(rec[:], "MR.EXTEND")
	for i := uint64(0); i < ovmf.PageSize/256; i++ {
		off := p*ovmf.PageSize + i*256
		binary.LittleEndian.PutUint64(rec[16:], s.MemoryAddress+off)
		h.Write(rec[:])
		clear(chunk[:])
		if off < uint64(s.RawDataSize) {
			end := min(off+256, uint64(s.RawDataSize))
			copy(chunk[:], image[uint64(s.DataOffset)+off:uint64(s.DataOffset)+end])
		}
		h.Write(chunk[:])
	}
}
