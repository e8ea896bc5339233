package tdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// LogEvent is one record of a CC event log.
type LogEvent struct {
	// MRIndex is the CC measurement register index (1..4 = RTMR0..3,
	// UEFI 2.10 §38.4.1); RTMR is MRIndex-1.
	MRIndex uint32
	Type    uint32
	// Digest is the SHA-384 digest (absent for the legacy first record).
	Digest [DigestSize]byte
	Data   []byte
}

// RTMR returns the register the event extends, or -1 for MR index 0.
func (e LogEvent) RTMR() int { return int(e.MRIndex) - 1 }

// Log is a parsed CC event log.
type Log struct {
	// SpecID is the data of the first (TCG_PCClientPCREvent) record,
	// "Spec ID Event03" with its algorithm list.
	SpecID []byte
	Events []LogEvent
}

const algSHA384 = 0x000c // TPM_ALG_SHA384

// maxEvents and maxEventData bound what a log may claim.
const (
	maxEvents    = 1 << 16
	maxEventData = 16 << 20
)

// ParseLog parses a CC event log in the TCG2 "crypto agile" format (TCG PC
// Client PFP 1.06 §10.2.1–10.2.2; UEFI 2.10 §38.4.2 CC_EVENT): a legacy
// TCG_PCR_EVENT carrying the Spec ID event, then CC_EVENT records {u32
// MrIndex, u32 EventType, u32 DigestCount, {u16 AlgId, digest}…, u32
// EventSize, Event}. The log as Linux exposes it
// (/sys/firmware/acpi/tables/data/CCEL) is padded to the log area size with
// 0xff or 0x00 bytes after the last event; parsing stops there.
func ParseLog(b []byte) (*Log, error) {
	if len(b) < 32 {
		return nil, errors.New("event log is shorter than its first record")
	}
	// First record: u32 PCRIndex, u32 EventType (EV_NO_ACTION), SHA-1[20], u32 size, data.
	if binary.LittleEndian.Uint32(b[4:]) != EvNoAction {
		return nil, fmt.Errorf("event log's first record has type %s, want EV_NO_ACTION (Spec ID event)", EventTypeName(binary.LittleEndian.Uint32(b[4:])))
	}
	n := binary.LittleEndian.Uint32(b[28:])
	if uint64(n) > uint64(len(b)-32) {
		return nil, errors.New("event log's Spec ID event runs past the end of the log")
	}
	spec := b[32 : 32+n]
	if !bytes.HasPrefix(spec, []byte("Spec ID Event03\x00")) {
		return nil, fmt.Errorf("event log is not crypto agile: Spec ID signature %q", bytes.TrimRight(spec[:min(16, len(spec))], "\x00"))
	}
	sizes, err := algorithmSizes(spec)
	if err != nil {
		return nil, err
	}
	l := &Log{SpecID: spec}
	off := 32 + int(n)
	for off < len(b) {
		if len(l.Events) == maxEvents {
			return nil, fmt.Errorf("event log has more than %d events", maxEvents)
		}
		if off+12 > len(b) {
			break
		}
		mr := binary.LittleEndian.Uint32(b[off:])
		typ := binary.LittleEndian.Uint32(b[off+4:])
		if mr == 0xffffffff || (mr == 0 && typ == 0) {
			break // the unused rest of the log area
		}
		count := binary.LittleEndian.Uint32(b[off+8:])
		if count == 0 || count > uint32(len(sizes)) {
			return nil, fmt.Errorf("event %d at %#x has %d digests; the Spec ID event lists %d algorithms", len(l.Events), off, count, len(sizes))
		}
		p := off + 12
		e := LogEvent{MRIndex: mr, Type: typ}
		found := false
		for i := uint32(0); i < count; i++ {
			if p+2 > len(b) {
				return nil, fmt.Errorf("event %d at %#x is truncated", len(l.Events), off)
			}
			alg := binary.LittleEndian.Uint16(b[p:])
			size, ok := sizes[alg]
			if !ok {
				return nil, fmt.Errorf("event %d at %#x uses algorithm %#x, which the Spec ID event does not list", len(l.Events), off, alg)
			}
			if p+2+size > len(b) {
				return nil, fmt.Errorf("event %d at %#x is truncated", len(l.Events), off)
			}
			if alg == algSHA384 {
				copy(e.Digest[:], b[p+2:p+2+size])
				found = true
			}
			p += 2 + size
		}
		if p+4 > len(b) {
			return nil, fmt.Errorf("event %d at %#x is truncated", len(l.Events), off)
		}
		ds := binary.LittleEndian.Uint32(b[p:])
		if ds > maxEventData || uint64(p+4)+uint64(ds) > uint64(len(b)) {
			return nil, fmt.Errorf("event %d at %#x claims %d bytes of data, past the end of the log", len(l.Events), off, ds)
		}
		if !found {
			return nil, fmt.Errorf("event %d at %#x has no SHA-384 digest", len(l.Events), off)
		}
		if mr > 4 {
			return nil, fmt.Errorf("event %d at %#x names MR index %d; TDX has 1..4 (RTMR0..3)", len(l.Events), off, mr)
		}
		e.Data = b[p+4 : p+4+int(ds)]
		l.Events = append(l.Events, e)
		off = p + 4 + int(ds)
	}
	return l, nil
}

// algorithmSizes reads the digest sizes from a TCG_EfiSpecIDEvent:
// signature[16], u32 platformClass, u8 minor, u8 major, u8 errata,
// u8 uintnSize, u32 numberOfAlgorithms, {u16 algId, u16 digestSize}…
func algorithmSizes(spec []byte) (map[uint16]int, error) {
	if len(spec) < 28 {
		return nil, errors.New("the Spec ID event is too short")
	}
	n := binary.LittleEndian.Uint32(spec[24:])
	if n == 0 || n > 16 || 28+4*int(n) > len(spec) {
		return nil, fmt.Errorf("the Spec ID event lists %d algorithms, which do not fit", n)
	}
	sizes := map[uint16]int{}
	for i := 0; i < int(n); i++ {
		a := binary.LittleEndian.Uint16(spec[28+4*i:])
		s := int(binary.LittleEndian.Uint16(spec[30+4*i:]))
		if s == 0 || s > 64 {
			return nil, fmt.Errorf("the Spec ID event gives algorithm %#x a digest size of %d", a, s)
		}
		sizes[a] = s
	}
	if sizes[algSHA384] != DigestSize {
		return nil, errors.New("event log has no SHA-384 digests (Spec ID event does not list TPM_ALG_SHA384)")
	}
	return sizes, nil
}

// Replay folds the log's events into RTMR values. EV_NO_ACTION events are
// informational and not extended.
func (l *Log) Replay() [4][DigestSize]byte {
	var r [4][DigestSize]byte
	for _, e := range l.Events {
		if e.Type == EvNoAction || e.RTMR() < 0 {
			continue
		}
		Extend(&r[e.RTMR()], e.Digest)
	}
	return r
}

// Difference is the first place where a log and a prediction part.
type Difference struct {
	RTMR int
	// Index is the position among that register's extended events.
	Index int
	// Predicted and Logged are nil past the end of either list.
	Predicted *Event
	Logged    *LogEvent
	// Meaning says what the difference most likely means.
	Meaning string
}

// Compare walks each register's events in the log and in the prediction and
// returns the first difference of each register (registers the prediction
// could not compute are skipped).
func Compare(l *Log, p *Prediction) []Difference {
	var diffs []Difference
	for reg := 0; reg < 4; reg++ {
		if p.RTMR[reg] == nil {
			continue
		}
		var logged []LogEvent
		for _, e := range l.Events {
			if e.RTMR() == reg && e.Type != EvNoAction {
				logged = append(logged, e)
			}
		}
		var predicted []Event
		for _, e := range p.Events {
			if e.RTMR == reg {
				predicted = append(predicted, e)
			}
		}
		for i := 0; i < max(len(logged), len(predicted)); i++ {
			var pe *Event
			var le *LogEvent
			if i < len(predicted) {
				pe = &predicted[i]
			}
			if i < len(logged) {
				le = &logged[i]
			}
			if pe != nil && le != nil && pe.Digest == le.Digest {
				continue
			}
			diffs = append(diffs, Difference{RTMR: reg, Index: i, Predicted: pe, Logged: le, Meaning: meaning(pe, le)})
			break
		}
	}
	return diffs
}

// meaning explains a difference in terms of the inputs that produce the event.
func meaning(p *Event, l *LogEvent) string {
	switch {
	case p == nil:
		return fmt.Sprintf("the log has an extra %s event: the firmware or kernel measures more than the edk2 profile models (a newer edk2 release, Secure Boot authority events, or systemd-stub sections?)", EventTypeName(l.Type))
	case l == nil:
		return fmt.Sprintf("the log ends before the predicted %q event: an older edk2 release, or a kernel that does not measure into RTMR2 (Linux before 6.9)?", p.Description)
	case p.Type != l.Type:
		return fmt.Sprintf("the log has %s where %s (%s) was predicted: the event order differs, so the edk2 profile is probably wrong", EventTypeName(l.Type), EventTypeName(p.Type), p.Description)
	}
	switch p.Type {
	case EvEFIHandoffTables2:
		return "the TD HOB differs: the memory size, or the firmware's TDX metadata layout"
	case EvEFIPlatformFirmwareBlob2:
		return "the CFV differs: the firmware's variable store is not the one given"
	case EvEFIVariableDriverConfig:
		return fmt.Sprintf("the Secure Boot variable %s differs: secure boot state or enrolled keys", p.Description)
	case EvPlatformConfigFlags:
		return fmt.Sprintf("%s differs: the ACPI tables depend on the QEMU version, vCPU count, memory size and devices; dump them from this VM shape", p.Description)
	case EvEFIVariableBoot:
		return "the boot variables differ: not a plain direct kernel boot, or a different edk2 release"
	case EvEFIBootServicesApp:
		return "the kernel image hash differs: another kernel, or QEMU's setup header patch (initrd size, memory size, QEMU 10+ unpatched kernels: --kernel-blob)"
	case EvEventTag:
		if p.Description == "initrd" {
			return "the initrd differs"
		}
		return fmt.Sprintf("the command line differs (predicted LoadOptions %q)", p.Description)
	case EvEFIAction, EvSeparator:
		return "a fixed event differs: the log is not from an edk2 OVMF of this profile"
	}
	return "the event digest differs"
}

// EncodeLog writes events as a CC event log in the format ParseLog reads
// (TCG2 crypto agile, SHA-384 only), so a predicted log can be compared
// with a real one by any event-log tool. Each event's data is its
// description, not the firmware's event structure: replay uses only the
// digests.
func EncodeLog(events []Event) []byte {
	spec := []byte("Spec ID Event03\x00")
	spec = binary.LittleEndian.AppendUint32(spec, 0) // platformClass: client
	spec = append(spec, 0, 2, 2, 2)                  // spec version 2.0 errata 2, uintnSize 2 (UINT64)
	spec = binary.LittleEndian.AppendUint32(spec, 1)
	spec = binary.LittleEndian.AppendUint16(spec, algSHA384)
	spec = binary.LittleEndian.AppendUint16(spec, DigestSize)
	spec = append(spec, 0) // vendorInfoSize
	b := binary.LittleEndian.AppendUint32(nil, 0)
	b = binary.LittleEndian.AppendUint32(b, EvNoAction)
	b = append(b, make([]byte, 20)...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(spec)))
	b = append(b, spec...)
	for _, e := range events {
		b = binary.LittleEndian.AppendUint32(b, uint32(e.RTMR+1))
		b = binary.LittleEndian.AppendUint32(b, e.Type)
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint16(b, algSHA384)
		b = append(b, e.Digest[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Description)))
		b = append(b, e.Description...)
	}
	return b
}
