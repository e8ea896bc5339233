package release

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/outcome"
)

// TestSBOMHelperTooOld: a cvmkit-sbom from before --job-stdin (CVMKIT_SBOM
// pointing at an older build) is named as too old, not answered with its
// usage text and a hint about the image.
func TestSBOMHelperTooOld(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "cvmkit-sbom")
	// What Go's flag package prints for an unknown flag, then exit 2.
	script := "#!/bin/sh\necho 'flag provided but not defined: -job-stdin' >&2\necho 'Usage of cvmkit-sbom:' >&2\nexit 2\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) (string, bool) {
		if k == "CVMKIT_SBOM" {
			return old, true
		}
		return "", false
	}
	h := StartSBOM(context.Background(), getenv)
	_, err := h.Make(SBOM{Input: dir, Name: "demo", Getenv: getenv})
	if outcome.ExitCode(err) != outcome.Usage || !strings.Contains(err.Error(), "older than this cvmkit") {
		t.Fatalf("err = %v (exit %v), want a usage error naming the helper as too old", err, outcome.ExitCode(err))
	}
	if hints := outcome.Hints(err); len(hints) == 0 || !strings.Contains(hints[0], "CVMKIT_SBOM") {
		t.Fatalf("hints = %q", hints)
	}
}
