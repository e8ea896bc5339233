// Package cli is cvmkit's command-line interface: a thin cobra tree over the
// domain packages, one file per command.
//
// Conventions every command follows: results go to stdout (human text, or
// JSON with --json); everything else goes to stderr — errors as
// "cvmkit: error: …" followed by "cvmkit: hint: …" lines, logs with -v, a
// progress bar only when stderr is a terminal. The process exit code comes
// from the error's classification (package outcome; docs/exit-codes.md).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// app carries what every command needs: the standard streams, the
// environment, and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)

	json    bool
	verbose int
	log     *slog.Logger

	// helperEnv is added to the environment of helper programs
	// (cvmkit-sigstore's identity token).
	helperEnv []string

	// started is set once a command's own code runs: an error before that is
	// a usage error (unknown command or flag, wrong arguments).
	started bool
}

// Main runs cvmkit with args (without the program name) and returns the
// process exit code. It never calls os.Exit, so tests can run it in-process.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && !a.started {
		err = usageError(root, err)
	}
	if err != nil && ctx.Err() != nil {
		// An interrupt: say so once, not Go's "context canceled" chain; the
		// cause stays wrapped for the exit code (130).
		if errors.Is(err, ctx.Err()) {
			err = &interrupted{cause: ctx.Err()}
		} else {
			err = &interrupted{cause: ctx.Err(), during: err}
		}
	}
	a.printError(err)
	return outcome.ExitCode(err).Value
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "cvmkit",
		Short: "Build, measure, encrypt and sign confidential AI releases",
		Long: `cvmkit turns a model release into what a key-release authority needs: a guest
image anyone can rebuild bit for bit, its exact AMD SEV-SNP and Intel TDX launch
measurements, NVIDIA GPU reference values, the model weights encrypted, an SBOM
and provenance, all signed, with policies ready to load.

Results go to stdout (--json for machine-readable output); errors, hints and
logs go to stderr. Exit codes are listed in docs/exit-codes.md.`,
		Version:            versionString(),
		DisableSuggestions: true, // usageError suggests, as a hint line
		SilenceErrors:      true,
		SilenceUsage:       true,
		DisableAutoGenTag:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.started = true
			level := slog.LevelWarn
			switch {
			case a.verbose >= 2:
				level = slog.LevelDebug
			case a.verbose == 1:
				level = slog.LevelInfo
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetUsageTemplate(usageTemplate(root))
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print the result as JSON on stdout")
	root.PersistentFlags().CountVarP(&a.verbose, "verbose", "v", "log progress to stderr (-vv for debug logs)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return outcome.UsageError(err, fmt.Sprintf("run 'cvmkit %s --help' for its flags", strings.TrimPrefix(cmd.CommandPath(), "cvmkit ")))
	})
	root.SuggestionsMinimumDistance = 2
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		a.versionCmd(),
		a.completionCmd(),
		a.configCmd(),
		a.buildCmd(),
		a.measureCmd(),
		a.checkCmd(),
		a.gpuCmd(),
		a.encryptCmd(),
		a.decryptCmd(),
		a.keygenCmd(),
		a.sbomCmd(),
		a.signCmd(),
		a.policyCmd(),
		a.releaseCmd(),
		a.verifyCmd(),
		a.firmwareCmd(),
	)
	return root
}

// usageError classifies an error cobra returned before any command ran,
// adding a hint: the closest command for a typo, or where to find usage.
func usageError(root *cobra.Command, err error) error {
	if len(outcome.Hints(err)) > 0 {
		return outcome.UsageError(err)
	}
	var word, parent string
	if n, _ := fmt.Sscanf(err.Error(), "unknown command %q for %q", &word, &parent); n == 2 {
		cmd, _, ferr := root.Find(strings.Fields(parent)[1:])
		if ferr == nil {
			if sugg := cmd.SuggestionsFor(word); len(sugg) > 0 {
				return outcome.UsageError(err, fmt.Sprintf("did you mean %q?", parent+" "+sugg[0]))
			}
		}
		return outcome.UsageError(err, fmt.Sprintf("run '%s --help' for its commands", parent))
	}
	return outcome.UsageError(err, "add --help to the command for its usage")
}

// printError writes err as "cvmkit: error: …" lines and its hints as
// "cvmkit: hint: …" lines.
func (a *app) printError(err error) {
	if err == nil {
		return
	}
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(a.stderr, "cvmkit: error: %s\n", line)
	}
	var hints []string
	var he interface{ Hints() []string }
	if errors.As(err, &he) {
		hints = append(hints, he.Hints()...)
	}
	hints = append(hints, outcome.Hints(err)...)
	seen := map[string]bool{}
	for _, h := range hints {
		if !seen[h] {
			seen[h] = true
			fmt.Fprintf(a.stderr, "cvmkit: hint: %s\n", h)
		}
	}
}

// emit writes v as indented JSON when --json is set, or calls human.
func (a *app) emit(v any, human func(w io.Writer)) error {
	if a.json {
		return writeJSON(a.stdout, v)
	}
	human(a.stdout)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs with a hint that names the command's usage.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument(s), got %d; usage: %s", cmd.CommandPath(), n, len(args), cmd.UseLine())
		}
		return nil
	}
}

// group makes cmd a command that only holds subcommands: with no argument
// it prints its help; with an unknown one it fails as a usage error (cobra
// would print the help and exit 0, hiding a typo in a script).
func group(cmd *cobra.Command) *cobra.Command {
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return usageError(cmd.Root(), fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
	}
	return cmd
}

// interrupted is the error of a command stopped by SIGINT or SIGTERM.
type interrupted struct {
	cause  error // the context's error
	during error // what the command reported, when it is more than that
}

func (e *interrupted) Error() string {
	if e.during != nil {
		return "interrupted (" + e.during.Error() + ")"
	}
	return "interrupted"
}

func (e *interrupted) Unwrap() []error {
	if e.during != nil {
		return []error{e.cause, e.during}
	}
	return []error{e.cause}
}

// flagUsages is pflag's FlagUsages without the "[=true|false]" pflag
// appends to boolean flags: "--json", as users type it (the suffix is
// blanked, so the columns stay aligned).
func flagUsages(fs *pflag.FlagSet) string {
	return strings.ReplaceAll(fs.FlagUsages(), "[=true|false]", strings.Repeat(" ", len("[=true|false]")))
}

func init() {
	cobra.AddTemplateFunc("flagUsages", flagUsages)
}

// usageTemplate is cobra's, with flagUsages for the flag lists.
func usageTemplate(c *cobra.Command) string {
	t := c.UsageTemplate()
	t = strings.ReplaceAll(t, ".LocalFlags.FlagUsages", "flagUsages .LocalFlags")
	return strings.ReplaceAll(t, ".InheritedFlags.FlagUsages", "flagUsages .InheritedFlags")
}

// CommandTree is cvmkit's command tree, for tools that render it (man pages
// in internal/tools/mangen); running it is Main's job.
func CommandTree() *cobra.Command {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv}
	return a.rootCmd()
}
