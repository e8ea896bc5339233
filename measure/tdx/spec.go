package tdx

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/qemu"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

// Spec is one TD launch to measure, parsed: what `cvmkit measure tdx` reads
// from its flags, `cvmkit release` from a platforms.tdx entry (one per vCPU
// count) and `verify --rebuild` from a released document. [Measure] turns it
// into the measurement document, so the three give the same bytes.
type Spec struct {
	Firmware Input
	// QEMUVersion ("9.2.0") selects the page order and how the kernel is
	// loaded; PageOrder, when set, is the page order given explicitly.
	QEMUVersion string
	PageOrder   PageOrder
	Memory      int64 // guest RAM in bytes (QEMU -m); 0: not given
	VCPUs       int   // recorded; the ACPI tables must be for this count
	// Profile is the firmware's edk2 release: without it RTMR0–2 are not
	// computed (which events are logged depends on it).
	Profile    Profile
	Kernel     *Input
	Initrd     *Input
	Cmdline    string
	ACPITables *Input
	// KernelBlob is how QEMU hands the kernel over; "" applies the rule
	// (unpatched for QEMU 10+ with edk2 202502+, else qemu-patched).
	KernelBlob KernelBlob
	SecureBoot SecureBootState
	// GuestMeasuresRTMR2 overrides what the kernel's version says about its
	// EFI stub measuring into RTMR2; GuestSource says who said so.
	GuestMeasuresRTMR2 *bool
	GuestSource        string
	RTMR3              [][DigestSize]byte
	XFAM               *uint64

	// Name says how the user named a setting ("kernel", "cmdline",
	// "memory", "guest-measures-rtmr2"), so errors point at the flag or
	// config key that was given; nil names it by key.
	Name func(key string) string
	// Hint is the fix a usage error suggests; "" points at cvmkit measure
	// tdx --help.
	Hint string
}

// Input is an input file's bytes and its recorded digests. The initrd may
// come without its bytes (Data nil): RTMR2 needs only its SHA-384 and QEMU's
// kernel patch its size, which File then carries.
type Input struct {
	Data []byte
	File refvalues.File
}

func (s *Spec) hint() string {
	if s.Hint != "" {
		return s.Hint
	}
	return "see cvmkit measure tdx --help"
}

func (s *Spec) name(key string) string {
	if s.Name != nil {
		return s.Name(key)
	}
	return key
}

// Measure computes MRTD (for each page order the spec leaves open) and
// predicts RTMR0–3 (docs/measure-tdx.md). It returns the document and the
// prediction (nil without a profile), whose event log a caller may write.
func Measure(ctx context.Context, s Spec) (*refvalues.TDX, *Prediction, error) {
	usage := func(format string, args ...any) error {
		return outcome.UsageError(fmt.Errorf(format, args...), s.hint())
	}
	doc := &refvalues.TDX{SecureBoot: string(s.SecureBoot), VCPUs: s.VCPUs, QEMUVersion: s.QEMUVersion, Memory: s.Memory,
		Firmware: s.Firmware.File, NotComputed: []refvalues.TDXNotComputed{}, Events: []refvalues.TDXEvent{}}
	if s.XFAM != nil {
		doc.XFAM = fmt.Sprintf("%#x", *s.XFAM)
	}
	orders := PageOrders
	doc.PageOrderSource = "both candidates (give --page-order or --qemu-version to choose)"
	if s.QEMUVersion != "" {
		q, err := ParseQEMUVersion(s.QEMUVersion)
		if err != nil {
			return nil, nil, usage("%s %w", s.name("qemu-version"), err)
		}
		orders = []PageOrder{PageOrderForQEMU(q.Major)}
		doc.PageOrderSource = "QEMU " + s.QEMUVersion
	}
	if s.PageOrder != "" {
		if s.QEMUVersion != "" && s.PageOrder != orders[0] {
			return nil, nil, usage("%s %s contradicts %s %s (%s)", s.name("page-order"), s.PageOrder, s.name("qemu-version"), s.QEMUVersion, orders[0])
		}
		orders, doc.PageOrderSource = []PageOrder{s.PageOrder}, refvalues.PageOrderFlag
	}
	if s.Memory != 0 && (s.Memory < 32<<20 || s.Memory%(1<<20) != 0) {
		return nil, nil, usage("%s %d bytes: QEMU takes whole MiB, at least 32", s.name("memory"), s.Memory)
	}
	image := s.Firmware.Data
	td, err := ovmf.ParseTDVF(image)
	if err != nil {
		return nil, nil, outcome.InputError(fmt.Errorf("firmware %q: %w", s.Firmware.File.Path, err), "give the whole OVMF.fd built with TDX support (IntelTdxX64 or OvmfPkgX64), the file QEMU loads with -bios")
	}
	// The structure the prediction needs is checked before any hashing.
	cfv, ok := td.Section(ovmf.TDVFCFV)
	if !ok {
		return nil, nil, outcome.InputError(fmt.Errorf("firmware %q has no CFV section in its TDX metadata", s.Firmware.File.Path))
	}
	for _, sec := range td.Sections {
		doc.Sections = append(doc.Sections, refvalues.TDVFSection{DataOffset: sec.DataOffset, RawDataSize: sec.RawDataSize, MemoryAddress: sec.MemoryAddress,
			MemoryDataSize: sec.MemoryDataSize, Type: sec.Type.String(), Attributes: sec.Attributes})
	}
	for _, o := range orders {
		m, err := MRTD(ctx, image, td, o)
		if err != nil {
			return nil, nil, err
		}
		doc.MRTD = append(doc.MRTD, refvalues.MRTD{PageOrder: string(o), Value: hex.EncodeToString(m[:])})
	}

	in := Inputs{Image: image, TDVF: td, Memory: uint64(s.Memory), Profile: s.Profile, RTMR3: s.RTMR3}
	doc.Profile = string(s.Profile)
	if s.Kernel == nil && (s.Initrd != nil || s.Cmdline != "") {
		return nil, nil, usage("%s and %s are measured only with %s", s.name("initrd"), s.name("cmdline"), s.name("kernel"))
	}
	if s.ACPITables != nil {
		f := s.ACPITables.File
		in.ACPITables, doc.ACPITables = s.ACPITables.Data, &f
	}
	if k := s.Kernel; k != nil {
		f := k.File
		in.Kernel, doc.Kernel = k.Data, &f
		// Whether RTMR2 holds the command line and initrd depends on the
		// guest kernel: read it, never assume it.
		info, err := ReadKernelInfo(k.Data)
		switch {
		case s.GuestMeasuresRTMR2 != nil:
			in.GuestMeasuresCC, doc.GuestCCGiven = *s.GuestMeasuresRTMR2, true
			doc.GuestCCSource = s.GuestSource
			if doc.GuestCCSource == "" {
				doc.GuestCCSource = s.name("guest-measures-rtmr2")
			}
			if err == nil {
				doc.KernelVersion = info.Version
			}
		case err != nil:
			return nil, nil, outcome.InputError(fmt.Errorf("%s %q: reading its version: %w", s.name("kernel"), k.File.Path, err),
				fmt.Sprintf("give %s=true or =false to say whether its EFI stub measures into RTMR2 (Linux 6.9 and later do)", s.name("guest-measures-rtmr2")))
		default:
			in.GuestMeasuresCC, doc.GuestCCSource, doc.KernelVersion = info.MeasuresCC, info.Reason, info.Version
		}
		guestCC := in.GuestMeasuresCC
		doc.GuestCC = &guestCC
		if s.Initrd != nil {
			f := s.Initrd.File
			in.Initrd, in.HasInitrd, doc.Initrd = s.Initrd.Data, true, &f
			if s.Initrd.Data == nil { // known by its digests only
				d, err := hex.DecodeString(f.SHA384)
				if err != nil || len(d) != DigestSize {
					return nil, nil, fmt.Errorf("%s %q: no SHA-384 recorded for it and no bytes to hash", s.name("initrd"), f.Path)
				}
				in.InitrdSHA384, in.InitrdSize = (*[DigestSize]byte)(d), f.Size
			}
		}
		in.Cmdline = s.Cmdline
	}
	in.KernelBlob = s.KernelBlob
	source := "given"
	switch {
	case in.KernelBlob != "" || s.Kernel == nil:
	case s.QEMUVersion != "":
		q, err := ParseQEMUVersion(s.QEMUVersion)
		if err != nil {
			return nil, nil, usage("%s %w", s.name("qemu-version"), err)
		}
		if in.KernelBlob, source, err = KernelHandover(q, s.Profile, IsBzImage(s.Kernel.Data)); err != nil {
			return nil, nil, usage("%s: %w", s.name("kernel"), err)
		}
	default:
		in.KernelBlob, source = KernelPatched, "no QEMU version: QEMU patches a Linux setup header unless it is 10.0+ with edk2 202502+ or 10.2+ (give the QEMU version)"
	}
	if s.Kernel != nil {
		doc.KernelBlob, doc.KernelBlobSource = string(in.KernelBlob), source
	}
	if in.KernelBlob == KernelPatched && s.Kernel != nil && s.Memory == 0 {
		return nil, nil, usage("QEMU's kernel patch depends on the memory size: give %s", s.name("memory"))
	}
	if in.SecureBoot, err = SecureBootFromStore(image[cfv.DataOffset:cfv.DataOffset+cfv.RawDataSize], s.SecureBoot); err != nil {
		return nil, nil, outcome.InputError(fmt.Errorf("firmware %q: %w", s.Firmware.File.Path, err))
	}
	if s.Profile == "" {
		for i := 0; i < 3; i++ {
			doc.NotComputed = append(doc.NotComputed, refvalues.TDXNotComputed{RTMR: i, Reason: "which events the firmware logs depends on its edk2 release: give --edk2-profile"})
		}
		// The firmware never touches RTMR3.
		var r3 [DigestSize]byte
		for _, d := range in.RTMR3 {
			Extend(&r3, d)
		}
		v := hex.EncodeToString(r3[:])
		doc.RTMR[3] = &v
		return doc, nil, nil
	}
	pred, err := Predict(in)
	if err != nil {
		if errors.Is(err, qemu.ErrInvalidVGA) {
			return nil, nil, outcome.UsageError(fmt.Errorf("%s: %w", s.name("cmdline"), err))
		}
		return nil, nil, outcome.InputError(err)
	}
	for i, r := range pred.RTMR {
		if r != nil {
			v := hex.EncodeToString(r[:])
			doc.RTMR[i] = &v
		} else {
			doc.NotComputed = append(doc.NotComputed, refvalues.TDXNotComputed{RTMR: i, Reason: pred.NotComputable[i]})
		}
	}
	for _, e := range pred.Events {
		doc.Events = append(doc.Events, refvalues.TDXEvent{RTMR: e.RTMR, Type: EventTypeName(e.Type), Description: e.Description, Digest: hex.EncodeToString(e.Digest[:])})
	}
	doc.UKI = pred.UKI
	if s.Kernel != nil {
		doc.Cmdline = &refvalues.TDXCmd{Value: s.Cmdline, LoadOptions: pred.LoadOptions}
	}
	return doc, pred, nil
}
