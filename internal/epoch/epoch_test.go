package epoch

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{in: "0", want: time.Unix(0, 0).UTC()},
		{in: "1700000000", want: time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)},
		{in: "253402300799", want: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{in: "", wantErr: "it is empty"},
		{in: "-1", wantErr: `'-' is not a decimal digit`},
		{in: "+5", wantErr: `'+' is not a decimal digit`},
		{in: " 5", wantErr: `' ' is not a decimal digit`},
		{in: "1.5", wantErr: `'.' is not a decimal digit`},
		{in: "2023-11-14", wantErr: `'-' is not a decimal digit`},
		{in: "1700000000000", wantErr: "after the year 9999"},
		{in: "99999999999999999999999", wantErr: "after the year 9999"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "seconds since 1970-01-01 UTC") {
				t.Errorf("Parse(%q) error %q does not say what the value must look like", tt.in, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	if _, ok, err := FromEnv(env(nil)); ok || err != nil {
		t.Errorf("unset: ok=%v err=%v, want false, nil", ok, err)
	}
	if tm, ok, err := FromEnv(env(map[string]string{Var: "42"})); !ok || err != nil || tm.Unix() != 42 {
		t.Errorf("42: %v %v %v", tm, ok, err)
	}
	if _, ok, err := FromEnv(env(map[string]string{Var: ""})); ok || err == nil {
		t.Errorf("set but empty must be an error, got ok=%v err=%v", ok, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1700000000", "-1", "1e9", "253402300800", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := Parse(s)
		if err != nil {
			return
		}
		if tm.Unix() < 0 || tm.Unix() > max {
			t.Fatalf("Parse(%q) = %v out of range", s, tm)
		}
	})
}
