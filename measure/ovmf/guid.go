package ovmf

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID is a UEFI GUID in its in-memory (EFI) byte order: the first three
// fields little-endian, the last two as written.
type GUID [16]byte

// MustGUID parses the canonical text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
func MustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// ParseGUID parses the canonical text form of a GUID.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return g, fmt.Errorf("bad GUID %q", s)
	}
	b, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, fmt.Errorf("bad GUID %q: %w", s, err)
	}
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(b[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(b[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(b[6:]))
	copy(g[8:], b[8:])
	return g, nil
}

func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]), binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:])
}

// GUIDs of the OVMF footer table entries (edk2 OvmfPkg/ResetVector,
// OvmfPkg/Include/WorkArea.h; QEMU hw/i386/pc_sysfw_ovmf.c).
var (
	FooterGUID       = MustGUID("96b582de-1fb2-45f7-baea-a366c55a082d") // OVMF_TABLE_FOOTER_GUID
	SEVESResetGUID   = MustGUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e") // SEV_ES_RESET_BLOCK_GUID
	SEVMetadataGUID  = MustGUID("dc886566-984a-4798-a75e-5585a7bf67cc") // OVMF_SEV_METADATA_GUID
	SEVHashTableGUID = MustGUID("7255371f-3a3b-4b04-927b-1da6efa8d454") // SEV_HASH_TABLE_RV_GUID
	SEVSecretGUID    = MustGUID("4c2eb361-7d9b-4cc3-8081-127c90d3d294") // SEV_SECRET_BLOCK_GUID
	TDXMetadataGUID  = MustGUID("e47a6535-984a-4798-865e-4685a7bf8ec2") // TDX_METADATA_OFFSET_GUID
	SVSMInfoGUID     = MustGUID("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd") // SVSM_INFO_GUID (Coconut SVSM)
)
