package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/refvalues"
)

// TestTDXWholeLaunchVectors runs the "all" vectors of
// ../shared/vectors/tdx.json (MRTD and RTMR0–3 from independent
// implementations) through the CLI; the per-component vectors are checked
// in measure/tdx.
func TestTDXWholeLaunchVectors(t *testing.T) {
	shared := testenv.Shared(t)
	b, err := os.ReadFile(testenv.SharedFile(t, "vectors/tdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []struct {
			ID       string            `json:"id"`
			Kind     string            `json:"kind"`
			Params   map[string]any    `json:"params"`
			Expected map[string]string `json:"expected"`
		} `json:"vectors"`
	}
	json.Unmarshal(b, &doc)
	n := 0
	for _, v := range doc.Vectors {
		if v.Kind != "all" {
			continue
		}
		n++
		t.Run(v.ID, func(t *testing.T) {
			p := v.Params
			args := []string{"measure", "tdx", "--json",
				"--firmware", filepath.Join(shared, p["firmware"].(string)),
				"--page-order", p["page_order"].(string),
				"--edk2-profile", p["edk2_profile"].(string),
				"--memory", fmt.Sprintf("%vM", p["memory_mib"]),
				"--vcpus", fmt.Sprint(p["vcpus"]),
				"--acpi-tables", filepath.Join(shared, p["acpi_tables"].(string)),
				"--kernel", filepath.Join(shared, p["kernel"].(string)),
				"--cmdline", p["cmdline"].(string),
				"--kernel-blob", p["kernel_blob"].(string)}
			if r, ok := p["initrd"].(string); ok {
				args = append(args, "--initrd", filepath.Join(shared, r))
			}
			// The vectors assume an EFI stub that measures RTMR2 (their
			// README: guest_kernel_measures_cc) with Debian's 6.1 kernel,
			// whose version alone would say it does not: pass the assumption.
			measures := true
			if b, ok := p["guest_kernel_measures_cc"].(bool); ok {
				measures = b
			}
			args = append(args, fmt.Sprintf("--guest-measures-rtmr2=%v", measures))
			var out, errb bytes.Buffer
			if code := Main(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) (string, bool) { return "", false }); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var res refvalues.TDX
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{"mrtd": res.MRTD[0].Value}
			for i, r := range res.RTMR {
				if r != nil {
					got[fmt.Sprintf("rtmr%d", i)] = *r
				}
			}
			for k, want := range v.Expected {
				if got[k] != want {
					t.Errorf("%s = %s, want %s", k, got[k], want)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no whole-launch vectors")
	}
}
