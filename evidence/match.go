package evidence

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Field is one compared report field.
type Field struct {
	Name string `json:"field"`
	Got  string `json:"got"`
	Want string `json:"want"`
	OK   bool   `json:"ok"`
	// Policy marks a field that a key authority's policy refuses (an old
	// TCB) rather than a different measurement or setting.
	Policy bool `json:"policy,omitempty"`
}

// Match is the comparison of evidence with a release.
type Match struct {
	// Configuration is the release configuration the evidence matches by
	// measurement; empty when it matches none.
	Configuration string `json:"configuration,omitempty"`
	// Entry is the TDX page order whose MRTD matched ("single-pass").
	Entry  string  `json:"entry,omitempty"`
	Fields []Field `json:"fields"`
}

// OK says the evidence matches a configuration in every field.
func (m *Match) OK() bool {
	if m.Configuration == "" {
		return false
	}
	for _, f := range m.Fields {
		if !f.OK {
			return false
		}
	}
	return true
}

// PolicyOnly says every failing field is a policy field (exit 6, not 5).
func (m *Match) PolicyOnly() bool {
	if m.Configuration == "" {
		return false
	}
	for _, f := range m.Fields {
		if !f.OK && !f.Policy {
			return false
		}
	}
	return true
}

// NotCompared starts the Want of a field the release leaves open (an RTMR
// it did not compute): such a field is OK without being compared.
const NotCompared = "not compared: "

// errNoTime is the error for a verification without a time: the
// libraries would take the zero time as "now", which the caller never
// said (cvmkit reads no clock of its own).
var errNoTime = errors.New("no verification time given: certificates are checked at an explicit time")

// noMatch is the result for evidence whose launch measurement (field) no
// configuration of the release has.
func noMatch(field string, got []byte, names []string) *Match {
	return &Match{Fields: []Field{{Name: field, Got: hex.EncodeToString(got),
		Want: fmt.Sprintf("one of %d configurations (%s)", len(names), strings.Join(names, ", "))}}}
}

// nonceField compares the 64-byte report data with the verifier's nonce:
// its first len(nonce) bytes, the rest zero (SNP REPORT_DATA and TDX
// REPORTDATA are both 64 bytes).
func nonceField(name string, got, nonce []byte) Field {
	want := make([]byte, 64)
	copy(want, nonce)
	return Field{Name: name, Got: hex.EncodeToString(got), Want: hex.EncodeToString(want), OK: bytes.Equal(got, want)}
}
