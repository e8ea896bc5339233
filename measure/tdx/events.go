package tdx

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/cvmkit/cvmkit/measure/ovmf"
)

// TCG event types (TCG PC Client PFP 1.06 §10.4.1).
const (
	EvNoAction                 uint32 = 0x3
	EvSeparator                uint32 = 0x4
	EvEventTag                 uint32 = 0x6
	EvPlatformConfigFlags      uint32 = 0xa
	EvIPL                      uint32 = 0xd
	EvEFIVariableDriverConfig  uint32 = 0x80000001
	EvEFIVariableBoot          uint32 = 0x80000002
	EvEFIBootServicesApp       uint32 = 0x80000003
	EvEFIGPTEvent              uint32 = 0x80000006
	EvEFIAction                uint32 = 0x80000007
	EvEFIHandoffTables         uint32 = 0x80000009
	EvEFIPlatformFirmwareBlob2 uint32 = 0x8000000a
	EvEFIHandoffTables2        uint32 = 0x8000000b
	EvEFIVariableAuthority     uint32 = 0x800000e0
)

var eventTypeNames = map[uint32]string{
	EvNoAction: "EV_NO_ACTION", EvSeparator: "EV_SEPARATOR", EvEventTag: "EV_EVENT_TAG",
	EvPlatformConfigFlags: "EV_PLATFORM_CONFIG_FLAGS", EvIPL: "EV_IPL",
	EvEFIVariableDriverConfig: "EV_EFI_VARIABLE_DRIVER_CONFIG", EvEFIVariableBoot: "EV_EFI_VARIABLE_BOOT",
	EvEFIBootServicesApp: "EV_EFI_BOOT_SERVICES_APPLICATION", EvEFIGPTEvent: "EV_EFI_GPT_EVENT",
	EvEFIAction: "EV_EFI_ACTION", EvEFIHandoffTables: "EV_EFI_HANDOFF_TABLES",
	EvEFIPlatformFirmwareBlob2: "EV_EFI_PLATFORM_FIRMWARE_BLOB2", EvEFIHandoffTables2: "EV_EFI_HANDOFF_TABLES2",
	EvEFIVariableAuthority: "EV_EFI_VARIABLE_AUTHORITY", 0x80000008: "EV_EFI_PLATFORM_FIRMWARE_BLOB",
}

// EventTypeName returns the TCG name of an event type.
func EventTypeName(t uint32) string {
	if n, ok := eventTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", t)
}

// ParseEventType is the inverse of EventTypeName.
func ParseEventType(name string) (uint32, bool) {
	for t, n := range eventTypeNames {
		if n == name {
			return t, true
		}
	}
	var t uint32
	if _, err := fmt.Sscanf(name, "0x%x", &t); err == nil {
		return t, true
	}
	return 0, false
}

// Event is one measurement extended into an RTMR.
type Event struct {
	RTMR        int
	Type        uint32
	Description string
	Digest      [DigestSize]byte
}

// Profile is an edk2 release range whose OVMF logs the same set of events
// for a direct kernel boot.
type Profile string

const (
	// Edk2Stable202408 covers edk2-stable202408 and 202408.01: CC
	// measurement on by default; the ReadyToBoot EV_SEPARATOR is the last
	// RTMR0 event and RTMR1 has none.
	Edk2Stable202408 Profile = "edk2-stable202408.01"
	// Edk2Stable202502 covers edk2-stable202411 to 202502: the separator
	// moved to RTMR1 after "Calling EFI Application from Boot Option"
	// (edk2 efaf8931bb).
	Edk2Stable202502 Profile = "edk2-stable202502"
	// Edk2Stable202505: fw_cfg items and SMBIOS are measured into RTMR0, and
	// BootManagerMenuApp becomes Boot0000 (edk2 be529ef3c9, cd76265f1a,
	// 9d9e3a2ba8). RTMR0 then depends on QEMU's fw_cfg and SMBIOS contents,
	// which cvmkit does not model: it is reported as not computable.
	Edk2Stable202505 Profile = "edk2-stable202505"
	// Edk2Stable202508 is 202505 with LoadOptions "initrd=initrd " as a
	// prefix instead of a suffix (edk2 a2ac0fea49).
	Edk2Stable202508 Profile = "edk2-stable202508"
)

// Profiles lists the profiles, oldest first, with the releases each covers.
var Profiles = []struct {
	Name     Profile
	Releases string
}{
	{Edk2Stable202408, "edk2-stable202408, 202408.01 (Ubuntu 24.10)"},
	{Edk2Stable202502, "edk2-stable202411 to 202502 (Debian trixie 2025.02)"},
	{Edk2Stable202505, "edk2-stable202505"},
	{Edk2Stable202508, "edk2-stable202508 and later"},
}

// ParseProfile accepts a profile name; the short forms 202408, 202411,
// 202502, 202505, 202508 and later release tags map to their range.
func ParseProfile(s string) (Profile, error) {
	for _, p := range Profiles {
		if s == string(p.Name) {
			return p.Name, nil
		}
	}
	var y, m int
	if _, err := fmt.Sscanf(trimPrefix(s, "edk2-stable"), "%4d%2d", &y, &m); err == nil && y >= 2018 && m >= 1 && m <= 12 {
		v := y*100 + m
		switch {
		case v < 202408:
			return "", fmt.Errorf("edk2 %s predates CC measurement by default (edk2-stable202408): its RTMRs are not modelled", s)
		case v < 202411:
			return Edk2Stable202408, nil
		case v < 202505:
			return Edk2Stable202502, nil
		case v < 202508:
			return Edk2Stable202505, nil
		default:
			return Edk2Stable202508, nil
		}
	}
	return "", fmt.Errorf("unknown edk2 profile %q; want %s, %s, %s or %s (or a release tag such as edk2-stable202411)", s, Edk2Stable202408, Edk2Stable202502, Edk2Stable202505, Edk2Stable202508)
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func (p Profile) atLeast(q Profile) bool {
	rank := map[Profile]int{Edk2Stable202408: 0, Edk2Stable202502: 1, Edk2Stable202505: 2, Edk2Stable202508: 3}
	return rank[p] >= rank[q]
}

// Well-known digests.
var (
	// separatorDigest is SHA-384 of the 4-byte separator value 0 (TCG PFP §3.3.2.2).
	separatorDigest = sha512.Sum384([]byte{0, 0, 0, 0})
)

func actionDigest(s string) [DigestSize]byte { return sha512.Sum384([]byte(s)) }

// EFI action strings (TCG PFP §10.4.4; edk2 Tcg2Dxe, BdsDxe).
const (
	actionCallingEFIApp   = "Calling EFI Application from Boot Option"
	actionExitBootSvc     = "Exit Boot Services Invocation"
	actionExitBootSvcDone = "Exit Boot Services Returned with Success"
)

// UEFI variable GUIDs.
var (
	efiGlobalVariable    = ovmf.MustGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	efiImageSecurityData = ovmf.MustGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
)

func utf16le(s string, nul bool) []byte {
	u := utf16.Encode([]rune(s))
	if nul {
		u = append(u, 0)
	}
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// variableDigest is the digest of an EV_EFI_VARIABLE_DRIVER_CONFIG event:
// SHA-384 of UEFI_VARIABLE_DATA {GUID, u64 name length in characters, u64
// data length, UTF-16 name without NUL, data} (TCG PFP §10.2.6); an absent
// variable is measured with no data.
func variableDigest(guid ovmf.GUID, name string, data []byte) [DigestSize]byte {
	n := utf16le(name, false)
	b := append([]byte(nil), guid[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(n)/2))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = append(b, n...)
	b = append(b, data...)
	return sha512.Sum384(b)
}

// SecureBootVariables are the values of the Secure Boot variables in the
// firmware's variable store; nil means absent (OVMF's default store).
type SecureBootVariables struct {
	SecureBoot, PK, KEK, DB, DBX []byte
	// DBT is measured only when present.
	DBT []byte
}

// uiAppLoadOption is OVMF's built-in Boot0000 (edk2 ≤ 202502) / Boot0001
// (≥ 202505): EFI_LOAD_OPTION {ACTIVE|HIDDEN|CATEGORY_APP, file path list
// length 44, "UiApp", FvVol(FvMain) FvFile(UiApp) End}.
func uiAppLoadOption() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0x109)
	b = binary.LittleEndian.AppendUint16(b, 44)
	b = append(b, utf16le("UiApp", true)...)
	fv, file := ovmf.MustGUID("7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1"), ovmf.MustGUID("462caa21-7614-4503-836e-8ab6f4662331")
	b = append(b, 4, 7, 20, 0) // MEDIA_DEVICE_PATH, MEDIA_PIWG_FW_VOL_DP
	b = append(b, fv[:]...)
	b = append(b, 4, 6, 20, 0) // MEDIA_DEVICE_PATH, MEDIA_PIWG_FW_FILE_DP
	b = append(b, file[:]...)
	b = append(b, 0x7f, 0xff, 4, 0) // END_DEVICE_PATH
	return b
}

// SecureBootState is the value of the SecureBoot variable OVMF measures.
type SecureBootState string

const (
	// SecureBootAbsent: OVMF built without SECURE_BOOT_ENABLE (such as
	// Debian's OVMF.fd) has no SecureBoot variable.
	SecureBootAbsent SecureBootState = "absent"
	// SecureBootDisabled: a Secure Boot capable build without enrolled
	// keys: SecureBoot is one byte 0.
	SecureBootDisabled SecureBootState = "disabled"
	// SecureBootEnabled: keys enrolled and enforcing: SecureBoot is one
	// byte 1.
	SecureBootEnabled SecureBootState = "enabled"
)

// SecureBootFromStore reads PK, KEK, db, dbx and dbt from a variable store
// (the firmware's CFV) and sets SecureBoot for state.
func SecureBootFromStore(store []byte, state SecureBootState) (*SecureBootVariables, error) {
	vars, err := ovmf.Variables(store)
	if err != nil {
		return nil, fmt.Errorf("reading the Secure Boot variables from the variable store: %w", err)
	}
	sb := &SecureBootVariables{}
	for _, v := range vars {
		switch {
		case v.GUID == efiGlobalVariable && v.Name == "PK":
			sb.PK = v.Data
		case v.GUID == efiGlobalVariable && v.Name == "KEK":
			sb.KEK = v.Data
		case v.GUID == efiImageSecurityData && v.Name == "db":
			sb.DB = v.Data
		case v.GUID == efiImageSecurityData && v.Name == "dbx":
			sb.DBX = v.Data
		case v.GUID == efiImageSecurityData && v.Name == "dbt":
			sb.DBT = v.Data
		}
	}
	switch state {
	case SecureBootAbsent, "":
	case SecureBootDisabled:
		sb.SecureBoot = []byte{0}
	case SecureBootEnabled:
		if sb.PK == nil {
			return nil, errors.New("secure boot enabled needs an enrolled PK, and the variable store has none")
		}
		sb.SecureBoot = []byte{1}
	default:
		return nil, fmt.Errorf("unknown secure boot state %q; want absent, disabled or enabled", state)
	}
	return sb, nil
}
