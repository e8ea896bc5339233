// Package spdm reads the attestation report of an NVIDIA GPU: the SPDM 1.1
// GET_MEASUREMENTS request and signed MEASUREMENTS response (DMTF DSP0274),
// its measurement blocks and NVIDIA's opaque fields. It parses only; the
// signature, the certificate chain and the comparison with reference values
// are package gpu's.
package spdm

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// SPDM 1.1 (DMTF DSP0274 1.1.x) constants used by NVIDIA GPUs.
const (
	spdmVersion11         = 0x11
	spdmGetMeasurements   = 0xE0 // §10.11.1 request code
	spdmMeasurements      = 0x60 // §10.11.2 response code
	RequestLen            = 37   // header 4 + nonce 32 + SlotIDParam 1
	nonceLen              = 32
	P384SignatureLen      = 96 // raw r‖s, NVIDIA's BaseAsymAlgo TPM_ALG_ECDSA_ECC_NIST_P384
	dmtfMeasurementSpec   = 0x01
	measurementHeaderLen  = 4 // Index, MeasurementSpecification, MeasurementSize u16
	dmtfMeasurementHdrLen = 3 // DMTFSpecMeasurementValueType, size u16
)

// Opaque data field types NVIDIA GPUs put in the MEASUREMENTS response
// (the same numbering in nvtrust's and the attestation SDK's parsers).
const (
	OpaqueCertIssuerName           = 1
	OpaqueCertAuthorityKeyID       = 2
	OpaqueDriverVersion            = 3
	OpaqueGPUInfo                  = 4
	OpaqueSKU                      = 5
	OpaqueVBIOSVersion             = 6
	OpaqueManufacturerID           = 7
	OpaqueTamperDetection          = 8
	OpaqueSMC                      = 9
	OpaqueVPR                      = 10
	OpaqueNVDEC0Status             = 11
	OpaqueMSRSCount                = 12
	OpaqueCPRInfo                  = 13
	OpaqueBoardID                  = 14
	OpaqueChipSKU                  = 15
	OpaqueChipSKUMod               = 16
	OpaqueProject                  = 17
	OpaqueProjectSKU               = 18
	OpaqueProjectSKUMod            = 19
	OpaqueFWID                     = 20
	OpaqueProtectedPCIeStatus      = 21
	OpaqueSwitchPDI                = 22
	OpaqueFloorsweptPorts          = 23
	OpaquePositionID               = 24
	OpaqueLockSwitchStatus         = 25
	OpaqueGPULinkConn              = 32
	OpaqueSysEnableStatus          = 33
	OpaqueDataVersion              = 34
	OpaqueChipInfo                 = 35
	OpaqueFeatureFlag              = 36
	NVDEC0Disabled            byte = 0x55 // NVDEC0 status: engine disabled
)

var opaqueNames = map[uint16]string{
	1: "CERT_ISSUER_NAME", 2: "CERT_AUTHORITY_KEY_IDENTIFIER", 3: "DRIVER_VERSION", 4: "GPU_INFO", 5: "SKU",
	6: "VBIOS_VERSION", 7: "MANUFACTURER_ID", 8: "TAMPER_DETECTION", 9: "SMC", 10: "VPR", 11: "NVDEC0_STATUS",
	12: "MSRSCNT", 13: "CPRINFO", 14: "BOARD_ID", 15: "CHIP_SKU", 16: "CHIP_SKU_MOD", 17: "PROJECT",
	18: "PROJECT_SKU", 19: "PROJECT_SKU_MOD", 20: "FWID", 21: "PROTECTED_PCIE_STATUS", 22: "SWITCH_PDI",
	23: "FLOORSWEPT_PORTS", 24: "POSITION_ID", 25: "LOCK_SWITCH_STATUS", 32: "GPU_LINK_CONN",
	33: "SYS_ENABLE_STATUS", 34: "OPAQUE_DATA_VERSION", 35: "CHIP_INFO", 36: "FEATURE_FLAG",
}

// OpaqueName returns NVIDIA's name of an opaque field type.
func OpaqueName(t uint16) string {
	if n, ok := opaqueNames[t]; ok {
		return n
	}
	return fmt.Sprintf("TYPE_%d", t)
}

// Block is one SPDM measurement block (DSP0274 §10.11.2, Table 45, with the
// DMTF measurement value format of Table 46).
type Block struct {
	// Index is the SPDM block index, 1-based; RIM index Index-1.
	Index uint8
	// Spec is MeasurementSpecification (0x01 DMTF).
	Spec uint8
	// ValueType is DMTFSpecMeasurementValueType; bit 7 set means a raw
	// bit stream, clear a digest.
	ValueType uint8
	Value     []byte
}

// OpaqueField is one type-length-value field of the response's opaque data.
type OpaqueField struct {
	Type  uint16
	Value []byte
}

// Report is a parsed GPU attestation report: the GET_MEASUREMENTS request
// followed by the MEASUREMENTS response, as NVML returns it.
type Report struct {
	// Nonce is the requester's nonce (the verifier's challenge).
	Nonce [32]byte
	// RequestParam1/2 and SlotID are the request's parameters (0x01: a
	// signature is requested; 0xFF: all blocks).
	RequestParam1, RequestParam2, SlotID uint8
	ResponseParam1, ResponseParam2       uint8
	Blocks                               []Block
	ResponderNonce                       [32]byte
	Opaque                               []OpaqueField
	// Signature is the raw ECDSA P-384 r‖s.
	Signature []byte
	// Signed is what the signature covers: the whole request and the
	// response up to (not including) the signature (DSP0274 §10.11.2,
	// the L1/L2 transcript for SPDM 1.1).
	Signed []byte
	// Trailing counts zero bytes found after the signature, which some
	// capture paths append; non-zero trailing bytes are refused.
	Trailing int
}

// ErrMalformed marks a report that cannot be parsed.
var ErrMalformed = errors.New("malformed")

func malformedReport(format string, args ...any) error {
	return fmt.Errorf("%w attestation report: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseReport parses a GPU attestation report (binary). See [DecodeReport]
// for the hex text NVML tools write.
func ParseReport(b []byte) (*Report, error) {
	if len(b) < RequestLen+8 {
		return nil, malformedReport("%d bytes is shorter than a GET_MEASUREMENTS request and a response header", len(b))
	}
	r := &Report{}
	// Request, DSP0274 §10.11.1 Table 43.
	if b[0] != spdmVersion11 {
		return nil, malformedReport("request SPDMVersion 0x%02x, want 0x11 (SPDM 1.1)", b[0])
	}
	if b[1] != spdmGetMeasurements {
		return nil, malformedReport("request code 0x%02x is not GET_MEASUREMENTS (0xE0)", b[1])
	}
	r.RequestParam1, r.RequestParam2 = b[2], b[3]
	if r.RequestParam1&0x01 == 0 {
		return nil, malformedReport("the request did not ask for a signature (Param1 0x%02x): an unsigned report proves nothing", b[2])
	}
	copy(r.Nonce[:], b[4:36])
	r.SlotID = b[36]

	resp := b[RequestLen:]
	// Response, §10.11.2 Table 44.
	if resp[0] != spdmVersion11 {
		return nil, malformedReport("response SPDMVersion 0x%02x, want 0x11", resp[0])
	}
	if resp[1] != spdmMeasurements {
		return nil, malformedReport("response code 0x%02x is not MEASUREMENTS (0x60)", resp[1])
	}
	r.ResponseParam1, r.ResponseParam2 = resp[2], resp[3]
	nBlocks := int(resp[4])
	recLen := int(resp[5]) | int(resp[6])<<8 | int(resp[7])<<16
	off := 8
	if len(resp) < off+recLen {
		return nil, malformedReport("MeasurementRecordLength %d runs past the end (%d bytes left)", recLen, len(resp)-off)
	}
	blocks, err := parseRecord(resp[off:off+recLen], nBlocks)
	if err != nil {
		return nil, err
	}
	r.Blocks = blocks
	off += recLen
	if len(resp) < off+nonceLen+2 {
		return nil, malformedReport("response ends inside the nonce or OpaqueLength")
	}
	copy(r.ResponderNonce[:], resp[off:off+nonceLen])
	off += nonceLen
	opLen := int(binary.LittleEndian.Uint16(resp[off:]))
	off += 2
	if len(resp) < off+opLen {
		return nil, malformedReport("OpaqueLength %d runs past the end", opLen)
	}
	if r.Opaque, err = parseOpaque(resp[off : off+opLen]); err != nil {
		return nil, err
	}
	off += opLen
	if len(resp) < off+P384SignatureLen {
		return nil, malformedReport("the response has %d bytes after the opaque data, fewer than a %d-byte P-384 signature", len(resp)-off, P384SignatureLen)
	}
	r.Signed = b[:RequestLen+off]
	r.Signature = resp[off : off+P384SignatureLen]
	for _, c := range resp[off+P384SignatureLen:] {
		if c != 0 {
			return nil, malformedReport("%d bytes follow the signature and they are not zero padding", len(resp)-off-P384SignatureLen)
		}
		r.Trailing++
	}
	return r, nil
}

func parseRecord(rec []byte, n int) ([]Block, error) {
	var blocks []Block
	seen := map[uint8]bool{}
	for len(rec) > 0 {
		if len(rec) < measurementHeaderLen {
			return nil, malformedReport("measurement block %d: truncated header", len(blocks)+1)
		}
		idx, spec := rec[0], rec[1]
		size := int(binary.LittleEndian.Uint16(rec[2:]))
		if len(rec) < measurementHeaderLen+size {
			return nil, malformedReport("measurement block index %d: MeasurementSize %d runs past the record", idx, size)
		}
		m := rec[measurementHeaderLen : measurementHeaderLen+size]
		rec = rec[measurementHeaderLen+size:]
		if idx == 0 || idx == 0xFF {
			return nil, malformedReport("measurement block index %d is reserved", idx)
		}
		if seen[idx] {
			return nil, malformedReport("measurement block index %d appears twice", idx)
		}
		seen[idx] = true
		if spec != dmtfMeasurementSpec {
			return nil, malformedReport("measurement block %d: MeasurementSpecification 0x%02x is not DMTF (0x01)", idx, spec)
		}
		if len(m) < dmtfMeasurementHdrLen {
			return nil, malformedReport("measurement block %d: DMTF header truncated", idx)
		}
		vlen := int(binary.LittleEndian.Uint16(m[1:]))
		if vlen != len(m)-dmtfMeasurementHdrLen {
			return nil, malformedReport("measurement block %d: value size %d does not fill MeasurementSize %d", idx, vlen, size)
		}
		blocks = append(blocks, Block{Index: idx, Spec: spec, ValueType: m[0], Value: m[dmtfMeasurementHdrLen:]})
	}
	if len(blocks) != n {
		return nil, malformedReport("NumberOfBlocks is %d but the record holds %d blocks", n, len(blocks))
	}
	return blocks, nil
}

func parseOpaque(b []byte) ([]OpaqueField, error) {
	var out []OpaqueField
	seen := map[uint16]bool{}
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, malformedReport("opaque data: %d stray bytes at the end", len(b))
		}
		t, l := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		if len(b) < 4+l {
			return nil, malformedReport("opaque field %s: length %d runs past the opaque data", OpaqueName(t), l)
		}
		if seen[t] {
			return nil, malformedReport("opaque field %s appears twice", OpaqueName(t))
		}
		seen[t] = true
		out = append(out, OpaqueField{Type: t, Value: b[4 : 4+l]})
		b = b[4+l:]
	}
	return out, nil
}

// DecodeReport turns the hex text of a report (as NVML tools and the
// fixtures store it; whitespace and a 0x prefix are allowed) into bytes.
func DecodeReport(text []byte) ([]byte, error) {
	s := strings.Join(strings.Fields(string(text)), "")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, malformedReport("not hex: %v", err)
	}
	return b, nil
}

// Field returns the value of opaque field t.
func (r *Report) Field(t uint16) ([]byte, bool) {
	for _, f := range r.Opaque {
		if f.Type == t {
			return f.Value, true
		}
	}
	return nil, false
}

// Block returns the measurement block with SPDM index idx.
func (r *Report) Block(idx int) (Block, bool) {
	for _, b := range r.Blocks {
		if int(b.Index) == idx {
			return b, true
		}
	}
	return Block{}, false
}

func ASCIIField(v []byte) string {
	if i := strings.IndexByte(string(v), 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

// DriverVersion is the driver version string ("550.90.07").
func (r *Report) DriverVersion() string {
	v, _ := r.Field(OpaqueDriverVersion)
	return ASCIIField(v)
}

// VBIOSVersion formats the VBIOS version field the way NVIDIA's services
// compare it. GPUs report 8 bytes, printed "%02X.%02X.%02X.%02X.%02X" from
// bytes 3, 2, 1, 0 and 4 ("96.00.9F.00.01"); NVSwitches report the ASCII
// string itself ("96.10.55.00.01"). "" when absent or of neither form.
func (r *Report) VBIOSVersion() string {
	v, ok := r.Field(OpaqueVBIOSVersion)
	switch {
	case !ok:
		return ""
	case len(v) == 8:
		return fmt.Sprintf("%02X.%02X.%02X.%02X.%02X", v[3], v[2], v[1], v[0], v[4])
	case vbiosVersionRE.MatchString(ASCIIField(v)):
		return strings.ToUpper(ASCIIField(v))
	}
	return ""
}

// NVDEC0Status returns the NVDEC0_STATUS byte (0xAA enabled, 0x55 disabled).
func (r *Report) NVDEC0Status() (byte, bool) {
	v, ok := r.Field(OpaqueNVDEC0Status)
	if !ok || len(v) != 1 {
		return 0, false
	}
	return v[0], true
}

// FWID is the firmware ID the GPU reports, which must equal the one in its
// attestation-key certificate.
func (r *Report) FWID() []byte {
	v, _ := r.Field(OpaqueFWID)
	return v
}

// VBIOSRIMID is the RIM ID NVIDIA's RIM service files this GPU's VBIOS RIM
// under: NV_GPU_VBIOS_<project>_<project sku>_<chip sku>_<version without
// dots>, like NV_GPU_VBIOS_1010_0200_882_96005E0001. "" when a field is
// missing.
func (r *Report) VBIOSRIMID() string {
	p, _ := r.Field(OpaqueProject)
	ps, _ := r.Field(OpaqueProjectSKU)
	cs, _ := r.Field(OpaqueChipSKU)
	v := r.VBIOSVersion()
	if len(p) == 0 || len(ps) == 0 || len(cs) == 0 || v == "" {
		return ""
	}
	return strings.ToUpper(fmt.Sprintf("NV_GPU_VBIOS_%s_%s_%s_%s", ASCIIField(p), ASCIIField(ps), ASCIIField(cs), strings.ReplaceAll(v, ".", "")))
}

// MeasurementCounts decodes MSRSCNT: how many times each of the 64
// registers was extended (index 0 is SPDM block 1).
func (r *Report) MeasurementCounts() []uint32 {
	v, _ := r.Field(OpaqueMSRSCount)
	out := make([]uint32, len(v)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(v[4*i:])
	}
	return out
}

// vbiosVersionRE is a VBIOS version in NVIDIA's dotted form (96.00.5E.00.01).
var vbiosVersionRE = regexp.MustCompile(`^[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}$`)

// IsVBIOSVersion reports whether s is a VBIOS version in NVIDIA's dotted
// form, as RIMs and reports write it.
func IsVBIOSVersion(s string) bool { return vbiosVersionRE.MatchString(s) }
