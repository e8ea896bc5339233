package tdx

import (
	"encoding/hex"
	"fmt"

	"github.com/cvmkit/cvmkit/refvalues"
)

// checkReplay is a CC event log replayed against the quote and compared
// with the release's predicted events.
// Replay is a CC event log replayed against a quote and compared with a
// release's predicted events (`cvmkit check tdx --event-log`).
type Replay struct {
	Events int `json:"events"`
	// MatchesQuote says the log replays to the quote's RTMRs: the log is
	// the one this TD measured.
	MatchesQuote bool     `json:"matches_quote"`
	Differences  []string `json:"differences,omitempty"`
	Lines        []string `json:"-"`
}

// OK says the log is this TD's and agrees with the prediction.
func (r *Replay) OK() bool { return r.MatchesQuote && len(r.Differences) == 0 }

// ReplayAgainst replays a CC event log, checks it against the quote's
// RTMRs and compares its events with the release's predicted ones.
func ReplayAgainst(log *Log, quoteRTMRs [][]byte, doc *refvalues.TDX) *Replay {
	r := &Replay{Events: len(log.Events), MatchesQuote: true}
	replayed := log.Replay()
	for i := 0; i < 4; i++ {
		var q []byte
		if i < len(quoteRTMRs) {
			q = quoteRTMRs[i]
		}
		if hex.EncodeToString(replayed[i][:]) != hex.EncodeToString(q) {
			r.MatchesQuote = false
			r.Differences = append(r.Differences, fmt.Sprintf("RTMR%d: the log replays to %x, the quote has %x: the log is not this TD's", i, replayed[i][:], q))
		}
	}
	if doc == nil {
		r.Lines = append(r.Lines, "no configuration matched: the events are not compared with a prediction")
		return r
	}
	pred := &Prediction{}
	for i, v := range doc.RTMR {
		if v != nil {
			var d [DigestSize]byte
			b, _ := hex.DecodeString(*v)
			copy(d[:], b)
			pred.RTMR[i] = &d
		}
	}
	for _, e := range doc.Events {
		typ, _ := ParseEventType(e.Type)
		var d [DigestSize]byte
		b, _ := hex.DecodeString(e.Digest)
		copy(d[:], b)
		pred.Events = append(pred.Events, Event{RTMR: e.RTMR, Type: typ, Description: e.Description, Digest: d})
	}
	for _, df := range Compare(log, pred) {
		what := "past the end"
		if df.Predicted != nil {
			what = fmt.Sprintf("%s %q", EventTypeName(df.Predicted.Type), df.Predicted.Description)
		}
		r.Differences = append(r.Differences, fmt.Sprintf("RTMR%d event %d (predicted %s): %s", df.RTMR, df.Index, what, df.Meaning))
	}
	r.Lines = append(r.Lines, r.Differences...)
	if r.OK() {
		r.Lines = append(r.Lines, "the log replays to the quote's RTMRs and every predicted event is in it")
	}
	return r
}
