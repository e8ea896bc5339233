package snp

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/qemu"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

// Spec is one measurement request, parsed: what `cvmkit measure snp` reads
// from its flags, `cvmkit release` from a platforms.snp entry and
// `verify --rebuild` from a released document. [Measure] turns it into the
// measurement document (refvalues.SNP), so the three give the same bytes.
type Spec struct {
	Mode    Mode
	Profile Profile
	VMMs    []VMM
	// CPUs are the vCPU signatures of the matrix (none: the VMM puts no
	// signature in the VMSA, as EC2 and GCE).
	CPUs          []CPU
	VCPUs         []int
	GuestFeatures uint64
	// Policy is the SNP guest policy recorded for key authorities (and put
	// in ID blocks); CheckPolicy asks for it to be validated even without
	// an ID block (a go-sev-guest policy is made from it).
	Policy      uint64
	CheckPolicy bool
	HostData    []byte // 32 bytes, or nil

	Firmware Input
	OVMFHash []byte // a precomputed snp:ovmf-hash seed, or nil
	// Boot is the kernel, initrd and command line bound through the
	// firmware's SEV hashes table (QEMU kernel-hashes=on), or nil.
	Boot *Boot
	// SVSM and VarsSize are the Coconut SVSM image and the OVMF variable
	// store size (mode snp:svsm).
	SVSM     *Input
	VarsSize uint64
	// ID signs an ID block and ID auth block for every digest.
	ID *IDKeys

	Explain  bool // record every page update (one digest only)
	DumpVMSA bool // return the measured VMSA pages

	// Name says how the user named a setting ("vcpus", "vmm-type", "mode",
	// "append", "explain", "dump-vmsa"), so errors point at the flag or
	// config key that was given; nil names it by key.
	Name func(key string) string
	// Hint is the fix a usage error suggests; "" points at cvmkit measure
	// snp --help.
	Hint string
}

// Input is an input file's bytes and its recorded digests.
type Input struct {
	Data []byte
	File refvalues.File
}

// Boot is a kernel launch bound by the hashes table: its table entries
// (which a caller that already knows the files' SHA-256 fills without
// reading them again) and how the document names the files.
type Boot struct {
	Hashes  KernelHashes
	Kernel  refvalues.File
	Initrd  *refvalues.File // nil: no -initrd (QEMU hashes an empty one)
	Cmdline string
}

// BootFromDigests is the Boot of files whose SHA-256 the caller already has
// (kernel and initrd hex digests): the table holds nothing else.
func BootFromDigests(kernel refvalues.File, initrd *refvalues.File, cmdline string) (*Boot, error) {
	b := &Boot{Kernel: kernel, Initrd: initrd, Cmdline: cmdline}
	if err := decode32(kernel.SHA256, &b.Hashes.Kernel); err != nil {
		return nil, fmt.Errorf("kernel sha256: %w", err)
	}
	if initrd != nil {
		if err := decode32(initrd.SHA256, &b.Hashes.Initrd); err != nil {
			return nil, fmt.Errorf("initrd sha256: %w", err)
		}
	} else {
		b.Hashes.Initrd = sha256.Sum256(nil) // as HashKernel without an initrd
	}
	b.Hashes.Cmdline = sha256.Sum256(append([]byte(cmdline), 0))
	return b, nil
}

func decode32(s string, dst *[32]byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return fmt.Errorf("%q is not 32 bytes of hex", s)
	}
	copy(dst[:], b)
	return nil
}

// IDKeys are what an ID block carries and who signs it.
type IDKeys struct {
	IDKey, AuthorKey  *ecdsa.PrivateKey
	FamilyID, ImageID [16]byte
	GuestSVN          uint32
}

// Result is a measured Spec: the document and, beside it, what a caller
// may write out.
type Result struct {
	Doc     *refvalues.SNP
	Entries []Entry
	Steps   []refvalues.SNPStep
	// IDBlocks[i] are the ID block and ID auth block of Entries[i].
	IDBlocks [][2][]byte
	// VMSAs are the measured VMSA pages by file name (NAME.vmsaI.bin),
	// with DumpVMSA.
	VMSAs map[string][]byte
}

func (s *Spec) hint() string {
	if s.Hint != "" {
		return s.Hint
	}
	return "see cvmkit measure snp --help"
}

func (s *Spec) name(key string) string {
	if s.Name != nil {
		return s.Name(key)
	}
	return key
}

// NeedsVMSA reports whether the mode measures vCPU state (and so needs
// vCPU counts and, for QEMU, signatures).
func (m Mode) NeedsVMSA() bool { return m != ModeSEV && m != ModeOVMFHash }

// IsSNP reports whether the mode gives an SEV-SNP launch digest.
func (m Mode) IsSNP() bool { return m == ModeSNP || m == ModeSVSM }

// Check validates the matrix (mode, VMMs, vCPU counts and signatures)
// before any input is read; [Measure] checks it too.
func (s *Spec) Check() error {
	usage := func(format string, args ...any) error {
		return outcome.UsageError(fmt.Errorf(format, args...), s.hint())
	}
	if s.Mode == ModeSVSM {
		for _, v := range s.VMMs {
			if v != QEMU {
				return outcome.UsageError(fmt.Errorf("%s snp:svsm with %s %s: an SVSM launch is measured for QEMU only (sev-snp-measure refuses it too)", s.name("mode"), s.name("vmm-type"), v),
					fmt.Sprintf("use %s QEMU with %s snp:svsm, or %s snp for %s", s.name("vmm-type"), s.name("mode"), s.name("mode"), v))
			}
		}
	}
	needVMSA := s.Mode.NeedsVMSA()
	if needVMSA && len(s.VCPUs) == 0 {
		return usage("%s is required for mode %s", s.name("vcpus"), s.Mode)
	}
	for _, n := range s.VCPUs {
		if n < 1 || n > 512 {
			return usage("%s %d: want 1 to 512", s.name("vcpus"), n)
		}
	}
	if needVMSA && len(s.CPUs) == 0 && containsVMM(s.VMMs, QEMU) {
		return usage("QEMU puts the vCPU signature in each VMSA: give %s", s.name("vcpu-type"))
	}
	return nil
}

// Measure computes every digest of the spec and the document that records
// them with their assumptions (docs/measure-snp.md).
func Measure(ctx context.Context, s Spec) (*Result, error) {
	usage := func(format string, args ...any) error {
		return outcome.UsageError(fmt.Errorf(format, args...), s.hint())
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	if s.Boot != nil {
		// QEMU reads -append before the guest starts and exits on some.
		if err := qemu.CheckCmdline(s.Boot.Cmdline); err != nil {
			return nil, outcome.UsageError(fmt.Errorf("%s: %w", s.name("append"), err))
		}
	}
	needVMSA, isSNP := s.Mode.NeedsVMSA(), s.Mode.IsSNP()
	if (s.ID != nil || s.CheckPolicy) && !isSNP {
		return nil, outcome.UsageError(fmt.Errorf("ID blocks and go-sev-guest policies are for SEV-SNP launch digests (%s snp or snp:svsm)", s.name("mode")), s.hint())
	}
	if s.ID != nil || s.CheckPolicy {
		if err := CheckPolicy(s.Policy); err != nil {
			return nil, outcome.UsageError(err)
		}
	}
	doc := &refvalues.SNP{Mode: string(s.Mode), Profile: ProfileName(s.Profile), Firmware: s.Firmware.File}
	if isSNP {
		doc.GuestFeatures = fmt.Sprintf("%#x", s.GuestFeatures)
		doc.Policy = fmt.Sprintf("%#x", s.Policy)
	}
	if s.HostData != nil {
		doc.HostData = hex.EncodeToString(s.HostData)
	}
	fw, err := ovmf.Parse(s.Firmware.Data)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("firmware %q: %w", s.Firmware.File.Path, err), "give the OVMF.fd that QEMU maps below 4 GiB (for split flash, the code and vars files concatenated)")
	}
	_, doc.KernelHashes = fw.Section(ovmf.SNPKernelHashes)
	l := Launch{Mode: s.Mode, Profile: s.Profile, GuestFeatures: s.GuestFeatures, Firmware: fw, Image: s.Firmware.Data}
	if s.OVMFHash != nil {
		l.OVMFHash, doc.OVMFHash = s.OVMFHash, hex.EncodeToString(s.OVMFHash)
	}
	if b := s.Boot; b != nil {
		k := b.Hashes
		l.Kernel = &k
		kd := b.Kernel
		kd.SHA256 = hex.EncodeToString(k.Kernel[:])
		doc.Kernel = &kd
		// Without -initrd QEMU hashes an empty initrd; say so.
		id := refvalues.File{}
		if b.Initrd != nil {
			id = *b.Initrd
		}
		id.SHA256 = hex.EncodeToString(k.Initrd[:])
		doc.Initrd = &id
		doc.Cmdline = &refvalues.SNPCmd{Value: b.Cmdline, SHA256: hex.EncodeToString(k.Cmdline[:])}
	}
	if s.Mode == ModeSVSM {
		if s.SVSM == nil {
			return nil, outcome.UsageError(fmt.Errorf("%s snp:svsm needs %s", s.name("mode"), s.name("svsm")), s.hint())
		}
		svsm, err := ovmf.Parse(s.SVSM.Data)
		if err != nil {
			return nil, outcome.InputError(fmt.Errorf("SVSM image %q: %w", s.SVSM.File.Path, err))
		}
		sd := s.SVSM.File
		l.SVSM, l.SVSMImage, l.VarsSize = svsm, s.SVSM.Data, s.VarsSize
		doc.SVSM, doc.VarsSize = &sd, s.VarsSize
	}
	vcpus := s.VCPUs
	if !needVMSA {
		vcpus = []int{0}
	}
	res := &Result{Doc: doc}
	if s.Explain {
		l.Explain = func(st Step) {
			e := refvalues.SNPStep{What: st.What, Contents: hex.EncodeToString(st.Contents), Digest: hex.EncodeToString(st.Digest)}
			if st.Type != 0 {
				e.GPA, e.Type = fmt.Sprintf("%#x", st.GPA), st.Type.String()
			}
			res.Steps = append(res.Steps, e)
		}
	}
	cpus := s.CPUs
	if len(cpus) == 0 {
		cpus = []CPU{{}}
	}
	firmwareErr := func(err error) error {
		return outcome.InputError(fmt.Errorf("firmware %q: %w", s.Firmware.File.Path, err))
	}
	if s.Mode == ModeSVSM {
		// One SVSM launch per vCPU type and count (QEMU only).
		for _, c := range cpus {
			for _, n := range vcpus {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				l.VMM, l.VCPUSig, l.VCPUs = QEMU, c.Sig, n
				d, err := l.Digest()
				if err != nil {
					return nil, firmwareErr(err)
				}
				res.Entries = append(res.Entries, Entry{VMM: QEMU, CPU: c, VCPUs: n, Digest: d})
			}
		}
	} else if res.Entries, err = Matrix(l, s.VMMs, cpus, vcpus); err != nil {
		return nil, firmwareErr(err)
	}
	for _, e := range res.Entries {
		se := refvalues.SNPEntry{Name: e.Name(), VMM: string(e.VMM), VCPUs: e.VCPUs, Digest: hex.EncodeToString(e.Digest)}
		if needVMSA && e.VMM == QEMU {
			se.VCPUType, se.VCPUSig = e.CPU.Name, fmt.Sprintf("%#x", e.CPU.Sig)
		}
		if s.ID != nil {
			blocks, err := s.ID.sign(e, s.Policy, &se)
			if err != nil {
				return nil, err
			}
			res.IDBlocks = append(res.IDBlocks, blocks)
		}
		doc.Measurements = append(doc.Measurements, se)
	}
	if s.DumpVMSA {
		if !needVMSA || s.Mode == ModeSVSM {
			return nil, usage("%s is for modes snp and seves", s.name("dump-vmsa"))
		}
		res.VMSAs = map[string][]byte{}
		for _, e := range res.Entries {
			v := l
			v.VMM, v.VCPUSig, v.VCPUs = e.VMM, e.CPU.Sig, e.VCPUs
			bsp, ap, err := v.VMSAs()
			if err != nil {
				return nil, firmwareErr(err)
			}
			for i := 0; i < e.VCPUs; i++ {
				page := ap
				if i == 0 {
					page = bsp
				}
				res.VMSAs[fmt.Sprintf("%s.vmsa%d.bin", e.Name(), i)] = page
			}
		}
	}
	if s.Explain && len(doc.Measurements) > 0 {
		doc.Measurements[len(doc.Measurements)-1].Steps = res.Steps
		if len(doc.Measurements) > 1 {
			return nil, usage("%s works on one digest at a time: give one vCPU count, type and VMM", s.name("explain"))
		}
	}
	return res, nil
}

// sign makes the ID block and ID auth block of one digest (SEV-SNP ABI
// specification, tables "ID Block" and "ID Authentication Information")
// and records them, as QEMU's sev-snp-guest object takes them, in se.
func (id *IDKeys) sign(e Entry, policy uint64, se *refvalues.SNPEntry) ([2][]byte, error) {
	b := &IDBlock{FamilyID: id.FamilyID, ImageID: id.ImageID, GuestSVN: id.GuestSVN, Policy: policy}
	copy(b.LD[:], e.Digest)
	auth, err := IDAuth(b, id.IDKey, id.AuthorKey)
	if err != nil {
		return [2][]byte{}, err
	}
	idd, _ := KeyDigest(&id.IDKey.PublicKey)
	se.IDBlock = base64.StdEncoding.EncodeToString(b.Bytes())
	se.IDAuth = base64.StdEncoding.EncodeToString(auth)
	se.IDKeyDigest = hex.EncodeToString(idd[:])
	se.QEMUObject = "id-block=" + se.IDBlock + ",id-auth=" + se.IDAuth
	if id.AuthorKey != nil {
		ad, _ := KeyDigest(&id.AuthorKey.PublicKey)
		se.AuthorKeyDigest = hex.EncodeToString(ad[:])
		se.QEMUObject += ",author-key-enabled=on"
	}
	return [2][]byte{b.Bytes(), auth}, nil
}

func containsVMM(vs []VMM, v VMM) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// ProfileName is the profile as documents record it ("current" for the
// default).
func ProfileName(p Profile) string {
	if p == ProfileCurrent {
		return "current"
	}
	return string(p)
}

// ProfileFor parses a profile name and checks it against every VMM of a
// matrix.
func ProfileFor(s string, vmms []VMM) (Profile, error) {
	var p Profile
	for _, v := range vmms {
		q, err := ParseProfile(s, v)
		if err != nil {
			return "", err
		}
		p = q
	}
	return p, nil
}
