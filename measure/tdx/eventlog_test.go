package tdx

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"strings"
	"testing"
)

func encodeLog(events []Event, pad int) []byte {
	return append(EncodeLog(events), bytes.Repeat([]byte{0xff}, pad)...)
}

func testPrediction(t testing.TB) *Prediction {
	t.Helper()
	p := &Prediction{}
	for i, d := range []string{"a", "b", "c"} {
		p.Events = append(p.Events, Event{RTMR: i % 3, Type: EvEFIAction, Description: d, Digest: sha512.Sum384([]byte(d))})
	}
	p.Events = append(p.Events, Event{RTMR: 1, Type: EvEFIBootServicesApp, Description: "kernel", Digest: sha512.Sum384([]byte("k"))})
	for reg := 0; reg < 4; reg++ {
		var r [DigestSize]byte
		for _, e := range p.Events {
			if e.RTMR == reg {
				Extend(&r, e.Digest)
			}
		}
		p.RTMR[reg] = &r
	}
	return p
}

func TestLogReplayAndCompare(t *testing.T) {
	p := testPrediction(t)
	logBytes := encodeLog(append([]Event{{RTMR: 0, Type: EvNoAction, Description: "StartupLocality"}}, p.Events...), 4096)
	l, err := ParseLog(logBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Events) != len(p.Events)+1 {
		t.Fatalf("parsed %d events", len(l.Events))
	}
	got := l.Replay()
	for i := range got {
		if got[i] != *p.RTMR[i] {
			t.Errorf("RTMR%d replays to %x, want %x (EV_NO_ACTION must not be extended)", i, got[i], p.RTMR[i])
		}
	}
	if d := Compare(l, p); len(d) != 0 {
		t.Fatalf("differences on an identical log: %+v", d)
	}
	// Change the kernel event: the difference names it and its meaning.
	bad := append([]Event(nil), p.Events...)
	bad[3].Digest[0] ^= 1
	l, _ = ParseLog(encodeLog(bad, 0))
	d := Compare(l, p)
	if len(d) != 1 || d[0].RTMR != 1 || d[0].Index != 1 || !strings.Contains(d[0].Meaning, "kernel image hash differs") {
		t.Fatalf("differences %+v", d)
	}
	// A missing event.
	l, _ = ParseLog(encodeLog(p.Events[:3], 0))
	d = Compare(l, p)
	if len(d) != 1 || d[0].Logged != nil || !strings.Contains(d[0].Meaning, "ends before") {
		t.Fatalf("missing event: %+v", d)
	}
}

func TestParseLogErrors(t *testing.T) {
	good := encodeLog(testPrediction(t).Events, 0)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter"},
		{"not EV_NO_ACTION", func() []byte { b := bytes.Clone(good); b[4] = 7; return b }(), "want EV_NO_ACTION"},
		{"spec past end", func() []byte { b := bytes.Clone(good); binary.LittleEndian.PutUint32(b[28:], 1<<30); return b }(), "runs past the end"},
		{"not crypto agile", func() []byte { b := bytes.Clone(good); copy(b[32:], "Spec ID Event02"); return b }(), "not crypto agile"},
		{"truncated event", good[:len(good)-10], "event 3 at"},
		{"bad MR index", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[32+int(binary.LittleEndian.Uint32(b[28:])):], 9)
			return b
		}(), "MR index 9"},
	}
	for _, tt := range tests {
		if _, err := ParseLog(tt.b); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func FuzzParseLog(f *testing.F) {
	f.Add(encodeLog(testPrediction(f).Events, 16))
	f.Add(encodeLog(nil, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLog(b)
		if err != nil {
			return
		}
		for _, e := range l.Events {
			if e.MRIndex > 4 {
				t.Fatalf("accepted MR index %d", e.MRIndex)
			}
		}
		l.Replay()
	})
}
