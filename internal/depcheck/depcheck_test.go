package depcheck

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

const mod = "github.com/cvmkit/cvmkit"

// modules are the repository's Go modules: the core and, in sbom/, the
// SBOM helper's (which alone links syft).
var modules = []string{".", "sbom"}

// listPackages runs `go list -json ./...` in every module of the repository.
func listPackages(t *testing.T) []Package {
	t.Helper()
	var pkgs []Package
	for _, m := range modules {
		pkgs = append(pkgs, listModule(t, filepath.Join(testenv.RepoRoot(t), m))...)
	}
	return pkgs
}

func listModule(t *testing.T, dir string) []Package {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	var pkgs []Package
	dec := json.NewDecoder(&out)
	for {
		var p Package
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// TestRepositoryLayout checks the real tree against the rules.
func TestRepositoryLayout(t *testing.T) {
	pkgs := listPackages(t)
	violations := Check(mod, pkgs)
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, mod), "/")
		if Layout[top(rel)] == CLI || rel == "internal/depcheck" || rel == "internal/testenv" {
			continue
		}
		violations = append(violations, ScanSource(p, top(rel) == "measure")...)
	}
	for _, v := range violations {
		t.Error(v)
	}
}

// TestRulesCatchViolations feeds the checker packages that break each rule,
// so a checker that silently passes everything fails here.
func TestRulesCatchViolations(t *testing.T) {
	pkgs := []Package{
		{ImportPath: mod + "/measure/snp", Imports: []string{"os", "github.com/spf13/cobra"}, Deps: []string{"os", "github.com/spf13/cobra", mod + "/measure/ovmf", mod + "/sign"}},
		// A third-party dependency linking cobra is not a violation.
		{ImportPath: mod + "/sign", Imports: []string{"github.com/sigstore/sigstore-go/pkg/sign"}, Deps: []string{"github.com/sassoftware/relic/lib/x509tools", "github.com/spf13/cobra"}},
		{ImportPath: mod + "/measure/ovmf", Deps: []string{mod + "/outcome", mod + "/config"}},
		{ImportPath: mod + "/encrypt", Deps: []string{mod + "/internal/cli"}},
		{ImportPath: mod + "/config", Deps: []string{mod + "/build"}},
		{ImportPath: mod + "/verify", Deps: []string{mod + "/build", mod + "/sign"}},
		{ImportPath: mod + "/internal/cli", Deps: []string{"github.com/spf13/cobra", mod + "/verify", mod + "/build"}},
		{ImportPath: mod + "/newthing"},
		// The composer may import domains and the other composer; a domain
		// may not import the composer, nor the base refvalues a domain.
		{ImportPath: mod + "/release", Deps: []string{mod + "/build", mod + "/policy", mod + "/verify", mod + "/refvalues"}},
		{ImportPath: mod + "/policy", Deps: []string{mod + "/release", mod + "/refvalues"}},
		{ImportPath: mod + "/refvalues", Deps: []string{mod + "/measure/gpu"}},
		// sbom/cmd is the helper's main: CLI, although sbom is a domain.
		{ImportPath: mod + "/sbom/cmd/cvmkit-sbom", Imports: []string{"os"}, Deps: []string{mod + "/sbom", mod + "/measure/tdx"}},
	}
	got := strings.Join(Check(mod, pkgs), "\n")
	for _, want := range []string{
		"measure/snp (domain) depends on github.com/spf13/cobra: only the CLI",
		"measure/snp (domain) depends on sign: domain packages never import each other sideways",
		"measure/snp imports os: measure packages take bytes and readers",
		"encrypt (domain) depends on internal/cli: nothing outside the CLI may import the CLI",
		"config (base) depends on build (domain)",
		`newthing: package folder "newthing" has no role`,
		"policy (domain) depends on release (composer)",
		"refvalues (base) depends on measure/gpu (domain)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violations do not contain %q; got:\n%s", want, got)
		}
	}
	for _, allowed := range []string{"verify (composer) depends", "release (composer) depends", "internal/cli (cli)", "measure/ovmf (domain)", "sign (domain) depends on github.com/spf13/cobra", "sbom/cmd/cvmkit-sbom"} {
		if strings.Contains(got, allowed) {
			t.Errorf("an allowed dependency was reported (%s):\n%s", allowed, got)
		}
	}
	if strings.Contains(got, "depends on measure/ovmf") {
		t.Errorf("a domain package's own sub-packages must be allowed:\n%s", got)
	}
}

func TestScanSourceCatchesPrinting(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import (
	"fmt"
	stdlog "log"
	"os"
	"time"
)

func f() {
	fmt.Println("hi")
	fmt.Fprintln(os.Stderr, "x")
	stdlog.Printf("y")
	println("z")
	_ = time.Now()
	fmt.Sprintf("fine")
}
`
	os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644)
	got := strings.Join(ScanSource(Package{Dir: dir, GoFiles: []string{"x.go"}}, true), "\n")
	for _, want := range []string{"fmt.Println", "os.Stderr", "log.Printf", "builtin println", "time.Now in a measure package"} {
		if !strings.Contains(got, want) {
			t.Errorf("ScanSource missed %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Sprintf") {
		t.Errorf("Sprintf flagged:\n%s", got)
	}
}

// TestCoreModuleWithoutSyft keeps syft (and its ~1,650 packages, cgo zstd
// and sqlite) out of the core module: only the sbom module may link it.
func TestCoreModuleWithoutSyft(t *testing.T) {
	for _, p := range listModule(t, testenv.RepoRoot(t)) {
		for _, d := range p.Deps {
			if strings.HasPrefix(d, "github.com/anchore/") {
				t.Errorf("%s depends on %s: syft belongs to the sbom module (sbom/go.mod)", p.ImportPath, d)
				break
			}
		}
	}
}
