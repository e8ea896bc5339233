package snp

import (
	"crypto/sha512"
	"encoding/binary"
)

// PageType is the PAGE_TYPE of SNP_LAUNCH_UPDATE (SEV-SNP ABI
// specification, rev 1.55, table 67 "PAGE_TYPE Field Encodings").
type PageType uint8

const (
	PageNormal     PageType = 1
	PageVMSA       PageType = 2
	PageZero       PageType = 3
	PageUnmeasured PageType = 4
	PageSecrets    PageType = 5
	PageCPUID      PageType = 6
)

func (t PageType) String() string {
	switch t {
	case PageNormal:
		return "NORMAL"
	case PageVMSA:
		return "VMSA"
	case PageZero:
		return "ZERO"
	case PageUnmeasured:
		return "UNMEASURED"
	case PageSecrets:
		return "SECRETS"
	case PageCPUID:
		return "CPUID"
	}
	return "UNKNOWN"
}

// DigestSize is the size of an SNP launch digest (SHA-384).
const DigestSize = 48

// vmsaGPA is where KVM tells the PSP the VMSA pages are (KVM's
// INITIAL_VMSA_GPA, 0xFFFFFFFFF000), for every vCPU.
const vmsaGPA = 0xFFFFFFFFF000

// Step is one SNP_LAUNCH_UPDATE as --explain prints it.
type Step struct {
	GPA  uint64
	Type PageType
	// Contents is SHA-384 of the page for NORMAL and VMSA pages (SHA-256 of
	// the component for SEV and SEV-ES), nil for pages without contents.
	Contents []byte
	// Digest is the launch digest after this step.
	Digest []byte
	// What says which part of the launch this page belongs to.
	What string
}

// gctx is the launch digest as the PSP accumulates it: for each page,
// LD = SHA-384(PAGE_INFO) where PAGE_INFO (SEV-SNP ABI spec rev 1.55,
// section 8.17.2, table 66) is
//
//	0x00 DIGEST_CUR[48]  0x30 CONTENTS[48]  0x60 u16 LENGTH=0x70
//	0x62 u8 PAGE_TYPE    0x63 u8 IMI_PAGE   0x64 u8 VMPL3..1_PERMS, reserved
//	0x68 u64 GPA
type gctx struct {
	ld      [DigestSize]byte
	explain func(Step)
	what    string
	buf     [0x70]byte
}

func (g *gctx) update(t PageType, gpa uint64, contents *[DigestSize]byte) {
	b := &g.buf
	copy(b[0x00:], g.ld[:])
	if contents != nil {
		copy(b[0x30:], contents[:])
	} else {
		clear(b[0x30:0x60])
	}
	binary.LittleEndian.PutUint16(b[0x60:], 0x70)
	b[0x62] = byte(t)
	clear(b[0x63:0x68]) // IMI_PAGE, VMPL permissions, reserved: 0 at launch
	binary.LittleEndian.PutUint64(b[0x68:], gpa)
	g.ld = sha512.Sum384(b[:])
	if g.explain != nil {
		ld := g.ld
		s := Step{GPA: gpa, Type: t, Digest: ld[:], What: g.what}
		if contents != nil {
			s.Contents = contents[:]
		}
		g.explain(s)
	}
}

// normalPages measures data as NORMAL pages from gpa up. len(data) must be
// a multiple of the page size.
func (g *gctx) normalPages(gpa uint64, data []byte) {
	for off := 0; off < len(data); off += pageSize {
		h := sha512.Sum384(data[off : off+pageSize])
		g.update(PageNormal, gpa+uint64(off), &h)
	}
}

// emptyPages measures size bytes of pages of type t (ZERO, UNMEASURED,
// SECRETS, CPUID) whose contents are not hashed.
func (g *gctx) emptyPages(t PageType, gpa uint64, size uint32) {
	for off := uint64(0); off < uint64(size); off += pageSize {
		g.update(t, gpa+off, nil)
	}
}

func (g *gctx) vmsaPage(page []byte) {
	h := sha512.Sum384(page)
	g.update(PageVMSA, vmsaGPA, &h)
}
