package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/evidence"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/gpu"
)

// TestCheckLimitsDocumented: docs/check.md's table of input limits is the
// one the code enforces.
func TestCheckLimitsDocumented(t *testing.T) {
	want := []string{
		"| input | limit |",
		"|---|---|",
		"| `--report` | " + fileio.Size(evidence.MaxReportSize) + " |",
		"| `--vcek`, `--amd-roots`, `--intel-roots` | " + fileio.Size(evidence.MaxCertificateSize) + " |",
		"| `--quote` | " + fileio.Size(evidence.MaxQuoteSize) + " |",
		"| `--event-log` | " + fileio.Size(evidence.MaxEventLogSize) + " |",
		"| `--tcb-info`, `--qe-identity`, `--tcb-signing-chain` | " + fileio.Size(evidence.MaxCollateralSize) + " |",
		fmt.Sprintf("| `--gpu-evidence` | %s, at most %d GPUs |", fileio.Size(gpu.MaxEvidenceSize), gpu.MaxGPUs),
	}
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "check.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- limits:")
	_, rest, _ = strings.Cut(rest, "-->\n")
	block, _, ok2 := strings.Cut(rest, "<!-- end limits -->")
	if !ok || !ok2 {
		t.Fatal("docs/check.md has no limits block")
	}
	if got := strings.TrimSpace(block); got != strings.Join(want, "\n") {
		t.Fatalf("docs/check.md's limits:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
