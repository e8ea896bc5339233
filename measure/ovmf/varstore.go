package ovmf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// Variable is one UEFI variable in a firmware variable store.
type Variable struct {
	GUID       GUID
	Name       string
	Attributes uint32
	Data       []byte
}

var (
	systemNvDataFvGUID          = MustGUID("fff12b8d-7696-4c8b-a985-2747075b4f50") // gEfiSystemNvDataFvGuid
	authenticatedVarGUID        = MustGUID("aaf32c78-947b-439a-a180-2e144ec37792") // gEfiAuthenticatedVariableGuid
	variableGUID                = MustGUID("ddcf3616-3275-4164-98b6-fe85707ffe7d") // gEfiVariableGuid
	errNotVarStore              = errors.New("not an OVMF variable store (no NV data firmware volume)")
	maxVariables                = 4096
	varHeaderStartID     uint16 = 0x55aa
	varAdded             byte   = 0x3f
	varAddedInDeleted    byte   = 0x3e // VAR_ADDED & VAR_IN_DELETED_TRANSITION: still current
)

// Variables parses the variable store at the start of a CFV / OVMF_VARS
// image (PI spec vol. 3 §3.2.1 EFI_FIRMWARE_VOLUME_HEADER; edk2
// MdeModulePkg/Include/Guid/VariableFormat.h, AuthenticatedVariableFormat.h)
// and returns the variables that are current (state VAR_ADDED), in store
// order.
func Variables(store []byte) ([]Variable, error) {
	if len(store) < 0x48 || GUID(store[16:32]) != systemNvDataFvGUID || string(store[40:44]) != "_FVH" {
		return nil, errNotVarStore
	}
	fvHeaderLen := int(binary.LittleEndian.Uint16(store[48:]))
	if fvHeaderLen < 0x48 || fvHeaderLen+28 > len(store) {
		return nil, fmt.Errorf("variable store firmware volume header length %#x is out of range", fvHeaderLen)
	}
	vs := store[fvHeaderLen:]
	sig := GUID(vs[:16])
	auth := sig == authenticatedVarGUID
	if !auth && sig != variableGUID {
		return nil, fmt.Errorf("unknown variable store signature %s", sig)
	}
	size := int(binary.LittleEndian.Uint32(vs[16:]))
	if size < 28 || size > len(vs) {
		return nil, fmt.Errorf("variable store size %#x does not fit the %#x bytes after its header", size, len(vs))
	}
	vs = vs[:size]
	hdr := 32 // AUTHENTICATED_VARIABLE_HEADER: 60 bytes, VARIABLE_HEADER: 32
	if auth {
		hdr = 60
	}
	var out []Variable
	for off := 28; off+hdr <= len(vs); {
		if binary.LittleEndian.Uint16(vs[off:]) != varHeaderStartID {
			break // end of the used part of the store
		}
		if len(out) == maxVariables {
			return nil, fmt.Errorf("variable store has more than %d variables", maxVariables)
		}
		state := vs[off+2]
		attrs := binary.LittleEndian.Uint32(vs[off+4:])
		var nameSize, dataSize int
		var guid GUID
		if auth {
			nameSize = int(binary.LittleEndian.Uint32(vs[off+36:]))
			dataSize = int(binary.LittleEndian.Uint32(vs[off+40:]))
			guid = GUID(vs[off+44 : off+60])
		} else {
			nameSize = int(binary.LittleEndian.Uint32(vs[off+8:]))
			dataSize = int(binary.LittleEndian.Uint32(vs[off+12:]))
			guid = GUID(vs[off+16 : off+32])
		}
		end := off + hdr + nameSize + dataSize
		if nameSize < 2 || nameSize%2 != 0 || dataSize < 0 || end > len(vs) || end < off {
			return nil, fmt.Errorf("variable at %#x (name %d bytes, data %d bytes) runs past the store", off, nameSize, dataSize)
		}
		name := vs[off+hdr : off+hdr+nameSize]
		if state == varAdded || state == varAddedInDeleted {
			u := make([]uint16, nameSize/2)
			for i := range u {
				u[i] = binary.LittleEndian.Uint16(name[2*i:])
			}
			for len(u) > 0 && u[len(u)-1] == 0 {
				u = u[:len(u)-1]
			}
			out = append(out, Variable{GUID: guid, Name: string(utf16.Decode(u)), Attributes: attrs, Data: vs[off+hdr+nameSize : end]})
		}
		off = (end + 3) &^ 3 // HEADER_ALIGN
	}
	return out, nil
}
