// Package depcheck enforces cvmkit's package layout (DESIGN.md, "Layout"):
//
//   - domain packages (build, measure/…, encrypt, sbom, sign, policy) never
//     import each other sideways, so each can be used and tested alone;
//   - only the CLI (internal/cli, cmd/…) uses cobra, and nothing imports
//     internal/cli;
//   - base packages (config, outcome, internal helpers) import no domain
//     package, so every domain package may use them;
//   - composers (verify, and the CLI) may import anything;
//   - library code never prints: no os.Stdout, os.Stderr, fmt.Print*, log.*;
//   - measure/… is pure computation: no os, net or os/exec, no time.Now.
//
// The rules are data ([Layout]) checked against `go list` output by this
// package's tests; a new top-level package must be classified here first.
package depcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
)

// Role is what a package is allowed to depend on.
type Role int

const (
	Base     Role = iota // imported by anything; imports no domain package
	Domain               // a silent library; no sideways imports
	Composer             // composes domain packages (verify, release)
	CLI                  // cobra lives here
)

func (r Role) String() string {
	return [...]string{"base", "domain", "composer", "cli"}[r]
}

// Layout maps each top-level package folder (relative to the module) to its
// role. Sub-packages inherit their top folder's role; a package under
// "internal/" is classified by "internal/<name>".
var Layout = map[string]Role{
	"config":              Base,
	"outcome":             Base,
	"internal/epoch":      Base,
	"internal/atomicfile": Base,
	"internal/progress":   Base,
	"internal/testenv":    Base,
	"internal/depcheck":   Base,
	"internal/textpb":     Base,
	"internal/initbin":    Base,
	"internal/version":    Base,
	"internal/fileio":     Base,
	"internal/helper":     Base,
	// The release folder's documents as types, read and written by
	// every stage.
	"refvalues": Base,

	"build":    Domain,
	"firmware": Domain,
	"measure":  Domain,
	"encrypt":  Domain,
	// sbom is its own Go module (sbom/go.mod, so that the core module
	// never compiles syft); the checker reads both modules.
	"sbom":     Domain,
	"sbom/cmd": CLI,
	"sign":     Domain,
	"policy":   Domain,
	"launch":   Domain,
	"evidence": Domain,

	"verify":  Composer,
	"release": Composer,

	"internal/cli":   CLI,
	"cmd":            CLI,
	"internal/tools": CLI,
	"examples":       CLI,
}

// cliOnly are imports only CLI packages may have (directly or not).
var cliOnly = []string{"github.com/spf13/cobra", "github.com/spf13/pflag"}

// pureForbidden are imports measure/… may not have: it takes bytes and
// readers, never opens files, the network or processes.
var pureForbidden = []string{"os", "os/exec", "net", "net/http", "io/ioutil"}

// Package is what the checker needs from `go list`.
type Package struct {
	ImportPath string
	Dir        string
	Imports    []string // direct
	Deps       []string // transitive
	GoFiles    []string // non-test sources, relative to Dir
}

// top returns the layout key of a package path relative to the module
// ("measure/snp" → "measure", "internal/cli/x" → "internal/cli"): a
// two-folder key ("internal/cli", "sbom/cmd") wins over its first folder.
func top(rel string) string {
	parts := strings.Split(rel, "/")
	if len(parts) > 1 {
		if k := parts[0] + "/" + parts[1]; parts[0] == "internal" || hasRole(k) {
			return k
		}
	}
	return parts[0]
}

func hasRole(k string) bool { _, ok := Layout[k]; return ok }

// Check returns every layout violation among pkgs of module mod, sorted.
func Check(mod string, pkgs []Package) []string {
	var v []string
	rel := func(p string) (string, bool) {
		if p == mod {
			return ".", true
		}
		r, ok := strings.CutPrefix(p, mod+"/")
		return r, ok
	}
	role := func(p string) (Role, string, bool) {
		r, ok := rel(p)
		if !ok {
			return 0, "", false
		}
		t := top(r)
		ro, known := Layout[t]
		return ro, t, known
	}
	for _, p := range pkgs {
		r, _ := rel(p.ImportPath)
		ro, t, known := role(p.ImportPath)
		if !known {
			v = append(v, fmt.Sprintf("%s: package folder %q has no role; classify it in internal/depcheck.Layout", r, t))
			continue
		}
		// cobra: our packages outside the CLI may not import it. (A
		// third-party library that happens to link it, as sigstore's
		// dependencies do, is not ours to judge; a module package that
		// imports it is caught on its own.)
		for _, d := range p.Imports {
			if ro != CLI {
				for _, c := range cliOnly {
					if d == c || strings.HasPrefix(d, c+"/") {
						v = append(v, fmt.Sprintf("%s (%s) depends on %s: only the CLI (internal/cli, cmd/) may use cobra", r, ro, d))
					}
				}
			}
		}
		for _, d := range p.Deps {
			dro, dt, dknown := role(d)
			if !dknown {
				continue
			}
			dr, _ := rel(d)
			switch {
			case dro == CLI && ro != CLI:
				v = append(v, fmt.Sprintf("%s (%s) depends on %s: nothing outside the CLI may import the CLI", r, ro, dr))
			case ro == Base && (dro == Domain || dro == Composer):
				v = append(v, fmt.Sprintf("%s (base) depends on %s (%s): base packages must not depend on domain packages", r, dr, dro))
			case ro == Domain && dro == Domain && dt != t:
				v = append(v, fmt.Sprintf("%s (domain) depends on %s: domain packages never import each other sideways; compose them in verify or the CLI", r, dr))
			case ro == Domain && dro == Composer:
				v = append(v, fmt.Sprintf("%s (domain) depends on %s (composer)", r, dr))
			}
		}
		if t == "measure" {
			for _, imp := range p.Imports {
				for _, f := range pureForbidden {
					if imp == f {
						v = append(v, fmt.Sprintf("%s imports %s: measure packages take bytes and readers, never files, network or processes", r, imp))
					}
				}
			}
		}
	}
	sort.Strings(v)
	return v
}

// printers are calls that write to the process's stdout or stderr.
var printers = map[string]map[string]bool{
	"fmt": {"Print": true, "Printf": true, "Println": true},
	"log": {"Print": true, "Printf": true, "Println": true, "Fatal": true, "Fatalf": true, "Fatalln": true, "Panic": true, "Panicf": true, "Panicln": true},
	"os":  {"Stdout": true, "Stderr": true, "Exit": true},
}

// ScanSource reports uses of printers (and, when pure, of time.Now) in the
// Go files of a non-CLI package. It matches on the import name, so an
// aliased import is caught too.
func ScanSource(p Package, pure bool) []string {
	var v []string
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		path := filepath.Join(p.Dir, name)
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			v = append(v, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		local := map[string]string{} // local name → import path
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			n := filepath.Base(ip)
			if imp.Name != nil {
				n = imp.Name.Name
			}
			local[n] = ip
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if id, ok := call.Fun.(*ast.Ident); ok && (id.Name == "println" || id.Name == "print") {
					v = append(v, fmt.Sprintf("%s: builtin %s writes to stderr; return values or take an io.Writer", fset.Position(call.Pos()), id.Name))
				}
			}
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			ip := local[x.Name]
			if printers[ip][sel.Sel.Name] {
				v = append(v, fmt.Sprintf("%s: %s.%s: library code must not print or exit; return values or take an io.Writer / *slog.Logger", fset.Position(sel.Pos()), ip, sel.Sel.Name))
			}
			if pure && ip == "time" && sel.Sel.Name == "Now" {
				v = append(v, fmt.Sprintf("%s: time.Now in a measure package: take the time as an input", fset.Position(sel.Pos())))
			}
			return true
		})
	}
	return v
}
