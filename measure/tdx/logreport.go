package tdx

import (
	"encoding/hex"

	"github.com/cvmkit/cvmkit/refvalues"
)

// LogReport is a CC event log replayed and, given a prediction, compared
// with it event by event (`cvmkit measure tdx replay --json`).
type LogReport struct {
	Log        refvalues.File `json:"log"`
	RTMR       [4]string      `json:"rtmr"`
	Events     []LoggedEvent  `json:"events"`
	Prediction *refvalues.TDX `json:"prediction,omitempty"`
	Match      *[4]*bool      `json:"match,omitempty"`
	First      []EventDiff    `json:"first_differences,omitempty"`
}

// LoggedEvent is one event of the log.
type LoggedEvent struct {
	RTMR   int    `json:"rtmr"`
	Type   string `json:"type"`
	Digest string `json:"digest"`
	Data   string `json:"data,omitempty"`
}

// EventDiff is where the log and the prediction first part, per RTMR.
type EventDiff struct {
	RTMR      int                 `json:"rtmr"`
	Index     int                 `json:"index"`
	Predicted *refvalues.TDXEvent `json:"predicted,omitempty"`
	Logged    *LoggedEvent        `json:"logged,omitempty"`
	Meaning   string              `json:"meaning"`
}

// NewLogReport replays log (whose file is d).
func NewLogReport(log *Log, d refvalues.File) *LogReport {
	res := &LogReport{Log: d, Events: []LoggedEvent{}}
	for i, r := range log.Replay() {
		res.RTMR[i] = hex.EncodeToString(r[:])
	}
	for _, e := range log.Events {
		res.Events = append(res.Events, loggedEvent(e))
	}
	return res
}

// Compare records the prediction (doc, pred) beside the log: which RTMRs
// match and the first difference of each; it reports whether a computed
// RTMR differs.
func (res *LogReport) Compare(log *Log, doc *refvalues.TDX, pred *Prediction) (mismatch bool) {
	res.Prediction = doc
	if pred == nil {
		return false
	}
	var match [4]*bool
	for i, r := range pred.RTMR {
		if r != nil {
			m := hex.EncodeToString(r[:]) == res.RTMR[i]
			match[i] = &m
			mismatch = mismatch || !m
		}
	}
	res.Match = &match
	for _, df := range Compare(log, pred) {
		rd := EventDiff{RTMR: df.RTMR, Index: df.Index, Meaning: df.Meaning}
		if df.Predicted != nil {
			rd.Predicted = &refvalues.TDXEvent{RTMR: df.Predicted.RTMR, Type: EventTypeName(df.Predicted.Type), Description: df.Predicted.Description, Digest: hex.EncodeToString(df.Predicted.Digest[:])}
		}
		if df.Logged != nil {
			le := loggedEvent(*df.Logged)
			rd.Logged = &le
		}
		res.First = append(res.First, rd)
	}
	return mismatch
}

func loggedEvent(e LogEvent) LoggedEvent {
	re := LoggedEvent{RTMR: e.RTMR(), Type: EventTypeName(e.Type), Digest: hex.EncodeToString(e.Digest[:])}
	if len(e.Data) <= 64 {
		re.Data = hex.EncodeToString(e.Data)
	}
	return re
}
