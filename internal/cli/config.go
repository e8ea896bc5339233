package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/release"
	"github.com/spf13/cobra"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a release config (cvmkit.yaml) and print its schema",
		Long: `Commands for the release config, cvmkit.yaml. Its format is described in
docs/config.md; its JSON Schema (for editors) is docs/cvmkit.schema.json.`,
		Example: `  cvmkit config validate cvmkit.yaml
  cvmkit config schema > cvmkit.schema.json`,
	}
	cmd.AddCommand(a.configValidateCmd(), a.configSchemaCmd())
	return group(cmd)
}

// validateResult is what `cvmkit config validate --json` prints.
type validateResult struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Release  *releaseID       `json:"release,omitempty"`
	Inputs   []config.Input   `json:"inputs"`
	Checked  bool             `json:"inputs_checked"`
	Problems []config.Problem `json:"problems"`
}

type releaseID struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (a *app) configValidateCmd() *cobra.Command {
	var skipInputs bool
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a release config strictly, and the files it pins",
		Long: `Check a release config: unknown keys, wrong types, malformed digests, bad
references between sections and impossible combinations are errors with
file:line:column and a hint. Then every input file is opened: it must exist and
match the sha256 digest the config pins, and every input folder must exist.
Relative paths are resolved against the config file's folder.

Exit code 0 when the config is valid, 3 when it is not (docs/exit-codes.md).`,
		Example: `  cvmkit config validate examples/quickstart/cvmkit.yaml
  cvmkit config validate --skip-inputs cvmkit.yaml   # before fetching the inputs
  cvmkit config validate --json cvmkit.yaml | jq .problems`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res := validateResult{File: args[0], Inputs: []config.Input{}, Problems: []config.Problem{}}
			c, err := config.Load(args[0])
			if err == nil {
				res.Release = &releaseID{c.Metadata.Name, c.Metadata.Version}
				res.Inputs = c.Inputs()
				err = problems(release.PlatformProblems(c))
				if err == nil && !skipInputs {
					a.log.Info("checking inputs", "count", len(res.Inputs))
					err = c.CheckInputs()
					res.Checked = true
					if err == nil {
						// What the policies stage would refuse, decided now
						// from the firmware and the kernel.
						err = problems(append(release.FirmwareProblems(c), release.BindingProblems(c, false)...))
					}
				}
			}
			var cerr *config.Error
			if errors.As(err, &cerr) {
				res.Problems = cerr.Problems
				err = outcome.InputError(err)
			}
			if err != nil {
				if a.json && cerr != nil {
					if werr := writeJSON(a.stdout, res); werr != nil {
						return werr
					}
				}
				return err
			}
			res.Valid = true
			return a.emit(res, func(w io.Writer) {
				how := fmt.Sprintf("%d inputs checked", len(res.Inputs))
				if skipInputs {
					how = fmt.Sprintf("%d inputs not opened (--skip-inputs)", len(res.Inputs))
				}
				var built []string
				for _, in := range res.Inputs {
					if in.Recipe != "" {
						built = append(built, in.Path+" (recipe "+in.Recipe+")")
					}
				}
				if len(built) > 0 {
					how += "; built from source by cvmkit release when missing: " + strings.Join(built, ", ")
				}
				fmt.Fprintf(w, "%s: valid (release %s %s; %s)\n", res.File, res.Release.Name, res.Release.Version, how)
			})
		},
	}
	cmd.Flags().BoolVar(&skipInputs, "skip-inputs", false, "check the config only; do not open the files it names")
	return cmd
}

func (a *app) configSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of cvmkit.yaml",
		Long: `Print the JSON Schema (draft 2020-12) of the release config, generated from
cvmkit's own types. Point your editor's YAML language server at it for
completion and early errors. The output is JSON with or without --json.`,
		Example: `  cvmkit config schema > cvmkit.schema.json
  # in cvmkit.yaml, for yaml-language-server:
  # yaml-language-server: $schema=./cvmkit.schema.json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := a.stdout.Write(config.Schema())
			return err
		},
	}
}

func problems(ps []config.Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return &config.Error{Problems: ps}
}
