package outcome

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestExitCode(t *testing.T) {
	base := errors.New("boom")
	mm := &MismatchError{Subject: "qemu-epyc/4 vCPUs", Register: "MEASUREMENT", Want: "aa", Got: "bb"}
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, OK},
		{"plain", base, Failure},
		{"usage", UsageError(base), Usage},
		{"input wrapped", fmt.Errorf("loading: %w", InputError(base)), Input},
		{"signature", SignatureError(base), Signature},
		{"policy", PolicyError(base), Policy},
		{"inventory", InventoryError(base), Inventory},
		{"mismatch", fmt.Errorf("verify: %w", mm), Mismatch},
		{"hint keeps inner class", WithHint(SignatureError(base), "check the key"), Signature},
		{"outer class wins", InputError(SignatureError(base)), Input},
		{"joined", errors.Join(base, PolicyError(base)), Policy},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), Interrupted},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("%s: ExitCode = %v, want %v", tt.name, got.Name, tt.want.Name)
		}
	}
	if mm.Error() != "qemu-epyc/4 vCPUs: MEASUREMENT mismatch: want aa, got bb" {
		t.Errorf("MismatchError text %q", mm.Error())
	}
}

func TestHints(t *testing.T) {
	err := fmt.Errorf("a: %w", WithHint(errors.Join(InputError(errors.New("x"), "fix x", "fix x"), UsageError(errors.New("y"), "fix y")), "outer"))
	if got, want := Hints(err), []string{"outer", "fix x", "fix y"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hints = %q, want %q", got, want)
	}
	if UsageError(nil) != nil {
		t.Error("classifying nil must give nil")
	}
}

func TestCodesUniqueAndSorted(t *testing.T) {
	seen := map[int]bool{}
	for i, c := range Codes {
		if seen[c.Value] || c.Name == "" || c.Meaning == "" {
			t.Errorf("bad code %+v", c)
		}
		seen[c.Value] = true
		if i > 0 && Codes[i-1].Value >= c.Value {
			t.Errorf("Codes not in ascending order at %d", c.Value)
		}
	}
}
