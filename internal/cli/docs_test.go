package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite the generated docs")

// TestGeneratedDocs keeps docs/exit-codes.md and docs/cli.md equal to what
// the code says. Refresh them with: go test ./internal/cli -run TestGeneratedDocs -update
func TestGeneratedDocs(t *testing.T) {
	root := testenv.RepoRoot(t)
	for name, gen := range map[string]func() []byte{
		"exit-codes.md": exitCodesDoc,
		"cli.md":        cliDoc,
	} {
		p := filepath.Join(root, "docs", name)
		want := gen()
		if *update {
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/%s is stale: run go test ./internal/cli -run TestGeneratedDocs -update", name)
		}
	}
}

func exitCodesDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`# Exit codes

<!-- Generated from outcome.Codes by: go test ./internal/cli -run TestGeneratedDocs -update. Do not edit. -->

Every cvmkit command exits with one of these codes, so that a script can tell
a bad signature from a measurement that does not match, from a policy that
rejects the evidence, from a missing file. When several things fail, the
first classified failure decides the code. The values never change between
releases.

| code | name | meaning |
|---:|---|---|
`)
	for _, c := range outcome.Codes {
		fmt.Fprintf(&b, "| %d | `%s` | %s |\n", c.Value, c.Name, c.Meaning)
	}
	b.WriteString(`
Errors are printed on stderr as ` + "`cvmkit: error: …`" + ` lines, each followed by
` + "`cvmkit: hint: …`" + ` lines that say what to do. With ` + "`--json`" + `, commands that
report problems (such as ` + "`config validate`" + `) also print them as JSON on stdout.

In Go, ` + "`outcome.ExitCode(err)`" + ` maps an error returned by cvmkit's packages to
its code; ` + "`*outcome.MismatchError`" + ` carries the subject, register, want and got.
`)
	return b.Bytes()
}

func cliDoc() []byte {
	a := &app{stdout: io.Discard, stderr: io.Discard, lookupEnv: func(string) (string, bool) { return "", false }}
	root := a.rootCmd()
	var b bytes.Buffer
	b.WriteString("# Command reference\n\n<!-- Generated from the cobra tree by: go test ./internal/cli -run TestGeneratedDocs -update. Do not edit. -->\n\n")
	b.WriteString("Every command also takes the global flags:\n\n```\n" + flagUsages(root.PersistentFlags()) + "```\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c != root {
			fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", c.CommandPath(), c.Short)
			if c.Long != "" {
				b.WriteString(c.Long + "\n\n")
			}
			fmt.Fprintf(&b, "```\n%s\n```\n", c.UseLine())
			if c.Example != "" {
				b.WriteString("\nExamples:\n\n```\n" + c.Example + "\n```\n")
			}
			if fl := c.NonInheritedFlags(); fl.HasAvailableFlags() {
				b.WriteString("\nFlags:\n\n```\n" + flagUsages(fl) + "```\n")
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return b.Bytes()
}

// TestEveryCommandDocumented: each runnable command has a short and long
// description and examples, and accepts --json.
func TestEveryCommandDocumented(t *testing.T) {
	a := &app{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" {
			return
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%s: needs Short, Long and Example", c.CommandPath())
		}
		if c.Flag("json") == nil {
			t.Errorf("%s: no --json flag", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root := a.rootCmd()
	for _, c := range root.Commands() {
		walk(c)
	}
}

// TestExitCodes runs Main in-process and checks the code for each class.
func TestExitCodes(t *testing.T) {
	run := func(ctx context.Context, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main(ctx, args, strings.NewReader(""), &out, &errb, func(string) (string, bool) { return "", false })
		return code, errb.String()
	}
	if code, _ := run(context.Background(), "version"); code != 0 {
		t.Errorf("version: %d", code)
	}
	if code, _ := run(context.Background(), "nope"); code != outcome.Usage.Value {
		t.Errorf("unknown command: %d", code)
	}
	if code, stderr := run(context.Background(), "config", "validate", filepath.Join(t.TempDir(), "x.yaml")); code != outcome.Input.Value || !strings.HasPrefix(stderr, "cvmkit: error: ") {
		t.Errorf("missing config: %d %q", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code, _ := run(ctx, "config", "validate", "x.yaml"); code != outcome.Interrupted.Value {
		t.Errorf("cancelled: %d, want %d", code, outcome.Interrupted.Value)
	}
}
