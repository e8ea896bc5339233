package tdx

import (
	"crypto/sha512"
	"errors"
	"fmt"

	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/qemu"
)

// KernelBlob says which bytes of the kernel the firmware measures.
type KernelBlob string

const (
	// KernelPatched: the kernel after QEMU's setup-header patch, as QEMU
	// before 10.0 hands it over fw_cfg (and as edk2 before 202502 loads it
	// with any QEMU).
	KernelPatched KernelBlob = "qemu-patched"
	// KernelUnpatched: the kernel file as is; QEMU 10.0+ exposes it as
	// fw_cfg etc/boot/kernel and edk2 202502+ prefers that.
	KernelUnpatched KernelBlob = "unpatched"
)

// Inputs describe a QEMU direct kernel boot of a TD.
type Inputs struct {
	Image   []byte
	TDVF    *ovmf.TDVF
	Profile Profile
	// Memory is the guest RAM in bytes.
	Memory uint64
	// ACPITables is QEMU's etc/acpi/tables blob for this machine shape; nil
	// makes RTMR0 not computable.
	ACPITables []byte
	// SecureBoot holds the Secure Boot variables of the variable store; nil
	// means all absent (OVMF's default store).
	SecureBoot *SecureBootVariables

	// Kernel is the file given to -kernel (a bzImage or a UKI); nil makes
	// RTMR1 and RTMR2 not computable.
	Kernel     []byte
	KernelBlob KernelBlob
	// Initrd is the file given to -initrd; HasInitrd distinguishes an empty
	// file from none.
	Initrd    []byte
	HasInitrd bool
	// InitrdSHA384 and InitrdSize stand for Initrd when the caller has
	// already hashed the file (read as a stream, or from the image lock):
	// the initrd is then neither held in memory nor hashed again.
	InitrdSHA384 *[DigestSize]byte
	InitrdSize   int64
	// Cmdline is -append.
	Cmdline string
	// GuestMeasuresCC is true when the guest kernel's EFI stub measures its
	// LoadOptions and initrd into RTMR2 (Linux 6.9 and later); false leaves
	// RTMR2 at zero.
	GuestMeasuresCC bool
	// RTMR3 are digests the guest extends into RTMR3, in order.
	RTMR3 [][DigestSize]byte
}

// Prediction is the predicted event log and the RTMRs it folds to.
type Prediction struct {
	Events []Event
	// RTMR holds each register; nil when it cannot be computed from the
	// inputs, with the reason in NotComputable.
	RTMR          [4]*[DigestSize]byte
	NotComputable [4]string
	// LoadOptions is the command line as the firmware hands it to the
	// kernel (before UTF-16 encoding), when there is one.
	LoadOptions string
	// UKI is true when the kernel was a unified kernel image.
	UKI bool
}

// Extend is RTMR extension: SHA-384(old ‖ digest) (TDX module spec §12.3,
// TDG.MR.RTMR.EXTEND).
func Extend(rtmr *[DigestSize]byte, digest [DigestSize]byte) {
	var b [2 * DigestSize]byte
	copy(b[:], rtmr[:])
	copy(b[DigestSize:], digest[:])
	*rtmr = sha512.Sum384(b[:])
}

// Predict computes the events OVMF (of in.Profile) and the Linux EFI stub
// log for a QEMU direct kernel boot, and the RTMR values they give.
func Predict(in Inputs) (*Prediction, error) {
	if in.TDVF == nil {
		return nil, errors.New("no TDX metadata")
	}
	p := &Prediction{}
	add := func(rtmr int, typ uint32, desc string, d [DigestSize]byte) {
		p.Events = append(p.Events, Event{RTMR: rtmr, Type: typ, Description: desc, Digest: d})
	}
	var known [4]bool

	// RTMR0: platform configuration (OvmfPkg TdxHelperLib in SEC; Tcg2Dxe,
	// SecureBootConfigDxe and QemuFwCfgAcpiPlatformDxe in DXE; BDS).
	switch {
	case in.Profile.atLeast(Edk2Stable202505):
		p.NotComputable[0] = "edk2 202505 and later measure QEMU's fw_cfg items and SMBIOS tables into RTMR0, which cvmkit does not model; take RTMR0 from a reference launch (cvmkit measure tdx replay)"
	case in.ACPITables == nil:
		p.NotComputable[0] = "RTMR0 covers QEMU's ACPI tables, which depend on the QEMU version and the VM shape: give --acpi-tables (docs/measure-tdx.md says how to dump them)"
	case in.Memory == 0:
		p.NotComputable[0] = "RTMR0 covers the TD HOB, which depends on the memory size: give --memory"
	default:
		hob, err := TDHOBDigest(in.TDVF, in.Memory)
		if err != nil {
			return nil, err
		}
		add(0, EvEFIHandoffTables2, "TD HOB", hob)
		cfv, err := CFVDigest(in.Image, in.TDVF)
		if err != nil {
			return nil, err
		}
		add(0, EvEFIPlatformFirmwareBlob2, "CFV (variable store)", cfv)
		sb := in.SecureBoot
		if sb == nil {
			sb = &SecureBootVariables{}
		}
		for _, v := range []struct {
			guid ovmf.GUID
			name string
			data []byte
		}{{efiGlobalVariable, "SecureBoot", sb.SecureBoot}, {efiGlobalVariable, "PK", sb.PK}, {efiGlobalVariable, "KEK", sb.KEK},
			{efiImageSecurityData, "db", sb.DB}, {efiImageSecurityData, "dbx", sb.DBX}} {
			state := "absent"
			if v.data != nil {
				state = fmt.Sprintf("%d bytes", len(v.data))
			}
			add(0, EvEFIVariableDriverConfig, fmt.Sprintf("%s (%s)", v.name, state), variableDigest(v.guid, v.name, v.data))
		}
		if sb.DBT != nil {
			add(0, EvEFIVariableDriverConfig, "dbt", variableDigest(efiImageSecurityData, "dbt", sb.DBT))
		}
		add(0, EvSeparator, "separator (PCR7)", separatorDigest)
		acpi, err := DeriveACPI(in.ACPITables)
		if err != nil {
			return nil, err
		}
		add(0, EvPlatformConfigFlags, "ACPI etc/table-loader", sha512.Sum384(acpi.TableLoader))
		add(0, EvPlatformConfigFlags, "ACPI etc/acpi/rsdp", sha512.Sum384(acpi.RSDP))
		add(0, EvPlatformConfigFlags, "ACPI etc/acpi/tables", sha512.Sum384(acpi.Tables))
		// Direct boot runs before BDS refreshes boot options, so only
		// OVMF's built-in UiApp option exists.
		add(0, EvEFIVariableBoot, "BootOrder (0000)", sha512.Sum384([]byte{0, 0}))
		add(0, EvEFIVariableBoot, "Boot0000 (UiApp)", sha512.Sum384(uiAppLoadOption()))
		if !in.Profile.atLeast(Edk2Stable202502) {
			add(0, EvSeparator, "separator (ReadyToBoot)", separatorDigest)
		}
		known[0] = true
	}

	// RTMR1: boot applications (PCR4/5: Tcg2Dxe, DxeTpm2MeasureBootLib).
	// RTMR2: the Linux EFI stub's LoadOptions and initrd (PCR9).
	if in.Kernel == nil {
		p.NotComputable[1] = "RTMR1 covers the kernel: give --kernel"
		p.NotComputable[2] = "RTMR2 covers the command line as the kernel receives it: give --kernel (and --cmdline, --initrd)"
	} else {
		if err := p.bootEvents(in, add); err != nil {
			return nil, err
		}
		known[1], known[2] = true, true
	}
	for _, d := range in.RTMR3 {
		add(3, EvEventTag, "guest RTMR3 extension", d)
	}
	known[3] = true

	for i := range p.RTMR {
		if !known[i] {
			continue
		}
		var r [DigestSize]byte
		for _, e := range p.Events {
			if e.RTMR == i {
				Extend(&r, e.Digest)
			}
		}
		p.RTMR[i] = &r
	}
	return p, nil
}

func (p *Prediction) bootEvents(in Inputs, add func(int, uint32, string, [DigestSize]byte)) error {
	kernel, cmdline := in.Kernel, in.Cmdline
	// QEMU refuses some command lines before the guest starts (-append).
	if err := qemu.CheckCmdline(cmdline); err != nil {
		return err
	}
	initrd, hasInitrd := in.Initrd, in.HasInitrd
	initrdSize, initrdSHA384 := len(initrd), in.InitrdSHA384
	if initrdSHA384 != nil {
		initrdSize = int(in.InitrdSize)
	}
	var linux []byte
	if !IsBzImage(kernel) {
		// A unified kernel image: the firmware measures it as is; the stub
		// then loads its .linux section, and takes .cmdline and .initrd
		// when -append and -initrd are not given.
		pe, err := ParsePE(kernel)
		if err != nil {
			return fmt.Errorf("kernel is neither a bzImage nor a PE image: %w", err)
		}
		var ok bool
		if linux, ok = pe.Section(kernel, ".linux"); !ok {
			return errors.New("kernel is a PE image without a .linux section: not a UKI, and not a bzImage")
		}
		p.UKI = true
		if c, ok := pe.Section(kernel, ".cmdline"); ok && cmdline == "" {
			cmdline = trimNUL(string(c))
		}
		if r, ok := pe.Section(kernel, ".initrd"); ok && !hasInitrd {
			initrd, hasInitrd, initrdSize, initrdSHA384 = r, true, len(r), nil
		}
	}
	desc := "kernel"
	var h [DigestSize]byte
	var err error
	if !p.UKI && in.KernelBlob != KernelUnpatched {
		// The patch changes a few setup header bytes: the kernel is hashed
		// in place with a patched copy of its first bytes.
		head, err := patchHead(kernel, initrdSize, in.HasInitrd, in.Memory, cmdline)
		if err != nil {
			return err
		}
		h, err = authenticodeWithHead(kernel, head)
		if err != nil {
			return fmt.Errorf("kernel: %w", err)
		}
		desc = "kernel (after QEMU's setup header patch)"
	} else {
		if p.UKI {
			desc = "UKI"
		}
		if h, err = Authenticode(kernel); err != nil {
			return fmt.Errorf("kernel: %w", err)
		}
	}
	add(1, EvEFIBootServicesApp, desc, h)
	add(1, EvEFIAction, actionCallingEFIApp, actionDigest(actionCallingEFIApp))
	if in.Profile.atLeast(Edk2Stable202502) {
		add(1, EvSeparator, "separator (ReadyToBoot)", separatorDigest)
	}
	if linux != nil {
		lh, err := Authenticode(linux)
		if err != nil {
			return fmt.Errorf("UKI .linux section: %w", err)
		}
		add(1, EvEFIBootServicesApp, "UKI .linux", lh)
	}
	add(1, EvEFIAction, actionExitBootSvc, actionDigest(actionExitBootSvc))
	add(1, EvEFIAction, actionExitBootSvcDone, actionDigest(actionExitBootSvcDone))

	// An empty -initrd is no initrd to the firmware: edk2-stable202502's
	// X86QemuLoadImageLib appends " initrd=initrd" only when fw_cfg's
	// initrd size is > 0 (X86QemuLoadImageLib.c, "if (InitrdSize > 0)"),
	// and QemuKernelLoaderFsDxe publishes no blob of size 0 (its
	// FetchBlob: "if (Size == 0) return EFI_SUCCESS"), so the EFI stub
	// finds no initrd to measure. (QEMU's own setup-header patch above
	// still sees the -initrd option.)
	if in.HasInitrd && initrdSize == 0 && !p.UKI {
		hasInitrd = false
	}
	// LoadOptions as OVMF's X86QemuLoadImageLib builds them for direct boot.
	opts := cmdline
	if in.HasInitrd && initrdSize > 0 { // OVMF adds initrd= only for a non-empty -initrd, not for a UKI's own .initrd
		if in.Profile.atLeast(Edk2Stable202508) {
			opts = "initrd=initrd"
			if cmdline != "" {
				opts += " " + cmdline
			}
		} else {
			opts = cmdline + " initrd=initrd"
		}
	}
	p.LoadOptions = opts
	if !in.GuestMeasuresCC {
		return nil
	}
	if opts != "" {
		add(2, EvEventTag, "LoadOptions (kernel command line)", sha512.Sum384(LoadOptions(opts)))
	}
	if hasInitrd {
		d := initrdSHA384
		if d == nil {
			s := sha512.Sum384(initrd)
			d = &s
		}
		add(2, EvEventTag, "initrd", *d)
	}
	return nil
}

// LoadOptions are the bytes OVMF gives the kernel as its LoadOptions for a
// command line, and so the bytes its EFI stub measures: X86QemuLoadImageLib
// widens the command line with UnicodeSPrintAsciiFormat("%a"), one CHAR16
// per byte (each byte zero-extended, whatever its value: UTF-8 is not
// decoded, so "café" is 63 00 61 00 66 00 c3 00 a9 00), then a NUL CHAR16.
// LoadOptionsSize is 2 × bytes + 2.
func LoadOptions(opts string) []byte {
	b := make([]byte, 0, 2*len(opts)+2)
	for i := 0; i < len(opts); i++ {
		b = append(b, opts[i], 0)
	}
	return append(b, 0, 0)
}

func trimNUL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == 0 || s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	return s
}
