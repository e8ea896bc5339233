package tdx

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/refvalues"
)

// TestReplayAgainst: a CC event log that folds to the quote's RTMRs and
// holds the predicted events is accepted; one with another kernel is named
// at the kernel event with its meaning.
func TestReplayAgainst(t *testing.T) {
	events := []Event{
		{RTMR: 1, Type: EvEFIBootServicesApp, Description: "kernel", Digest: [48]byte{1}},
		{RTMR: 1, Type: EvEFIAction, Description: "Calling EFI Application from Boot Option", Digest: [48]byte{2}},
	}
	doc := &refvalues.TDX{}
	var r1 [48]byte
	for _, e := range events {
		Extend(&r1, e.Digest)
		doc.Events = append(doc.Events, refvalues.TDXEvent{RTMR: e.RTMR, Type: EventTypeName(e.Type), Description: e.Description, Digest: hex.EncodeToString(e.Digest[:])})
	}
	v := hex.EncodeToString(r1[:])
	doc.RTMR[1] = &v
	zero := make([]byte, 48)
	quote := [][]byte{zero, r1[:], zero, zero}
	log, err := ParseLog(EncodeLog(events))
	if err != nil {
		t.Fatal(err)
	}
	if rp := ReplayAgainst(log, quote, doc); !rp.OK() {
		t.Fatalf("matching log: %+v", rp)
	}
	other := append([]Event(nil), events...)
	other[0].Digest[0] = 9
	var o1 [48]byte
	for _, e := range other {
		Extend(&o1, e.Digest)
	}
	log, _ = ParseLog(EncodeLog(other))
	rp := ReplayAgainst(log, [][]byte{zero, o1[:], zero, zero}, doc)
	if rp.OK() || !rp.MatchesQuote || len(rp.Differences) != 1 || !strings.Contains(rp.Differences[0], "RTMR1 event 0") || !strings.Contains(rp.Differences[0], "the kernel image hash differs") {
		t.Fatalf("other kernel: %+v", rp)
	}
}
