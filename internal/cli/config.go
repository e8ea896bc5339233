package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/measure/ovmf"
	"github.com/cvmkit/cvmkit/measure/snp"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/outcome"
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
				err = problems(platformProblems(c))
				if err == nil && !skipInputs {
					a.log.Info("checking inputs", "count", len(res.Inputs))
					err = c.CheckInputs()
					res.Checked = true
					if err == nil {
						err = problems(firmwareProblems(c))
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

// platformProblems checks the platform matrices against what the measure
// packages accept: vCPU type names and VMSA profiles.
func platformProblems(c *config.Config) []config.Problem {
	var ps []config.Problem
	for i, s := range c.Platforms.SNP {
		p := fmt.Sprintf("platforms.snp[%d]", i)
		for j, t := range s.VCPUTypes {
			if _, err := snp.CPUSignature(t); err != nil {
				ps = append(ps, c.Problem(fmt.Sprintf("%s.vcpuTypes[%d]", p, j), fmt.Sprintf("unknown vCPU type %q", t), strings.TrimSpace(config.Suggest(t, snp.CPUTypes())+" known types: "+strings.Join(snp.CPUTypes(), ", "))))
			}
		}
		if _, err := snp.ParseProfile(s.Profile, snp.VMM(s.VMM)); err != nil {
			ps = append(ps, c.Problem(p+".profile", err.Error(), "see docs/measure-snp.md, \"Profiles for older host stacks\""))
		}
	}
	for i, t := range c.Platforms.TDX {
		if t.EDK2Profile == "" {
			continue
		}
		if _, err := tdx.ParseProfile(t.EDK2Profile); err != nil {
			ps = append(ps, c.Problem(fmt.Sprintf("platforms.tdx[%d].edk2Profile", i), err.Error(), "see docs/measure-tdx.md, \"edk2 profiles\""))
		}
	}
	return ps
}

// firmwareProblems parses each firmware named by an SNP configuration and
// checks that it can measure what the configuration asks for.
func firmwareProblems(c *config.Config) []config.Problem {
	var ps []config.Problem
	parsed := map[string]*ovmf.Firmware{}
	for i, f := range c.Firmware {
		img, err := os.ReadFile(c.Resolve(f.Path))
		if err == nil {
			var fw *ovmf.Firmware
			if fw, err = ovmf.Parse(img); err == nil {
				parsed[f.Name] = fw
				continue
			}
		}
		ps = append(ps, c.Problem(fmt.Sprintf("firmware[%d].path", i), fmt.Sprintf("firmware %q: %v", f.Path, err), "give an OVMF image (OVMF.fd)"))
	}
	for i, t := range c.Platforms.TDX {
		f := c.FirmwareByName(t.Firmware)
		if f == nil || parsed[t.Firmware] == nil {
			continue
		}
		img, _ := os.ReadFile(c.Resolve(f.Path))
		if _, err := ovmf.ParseTDVF(img); err != nil {
			ps = append(ps, c.Problem(fmt.Sprintf("platforms.tdx[%d].firmware", i), fmt.Sprintf("firmware %q cannot launch a TD: %v", t.Firmware, err), "use the whole OVMF.fd of a TDX-capable build"))
		}
	}
	for i, s := range c.Platforms.SNP {
		fw := parsed[s.Firmware]
		if fw == nil {
			continue
		}
		p := fmt.Sprintf("platforms.snp[%d]", i)
		if _, ok := fw.Section(ovmf.SNPKernelHashes); s.KernelHashes && !ok && s.Mode != "sev" && s.Mode != "seves" {
			ps = append(ps, c.Problem(p+".kernelHashes", fmt.Sprintf("firmware %q has no SNP_KERNEL_HASHES section: kernel-hashes=on cannot bind the kernel, initrd and command line under SEV-SNP", s.Firmware), "use an OvmfPkg/AmdSev/AmdSevX64 build, or set kernelHashes: false"))
		}
		if s.KernelHashes && (s.Mode == "sev" || s.Mode == "seves") && fw.HashTable == nil {
			ps = append(ps, c.Problem(p+".kernelHashes", fmt.Sprintf("firmware %q has no SEV hashes table", s.Firmware), "use an OvmfPkg/AmdSev/AmdSevX64 build, or set kernelHashes: false"))
		}
		if !fw.HasSEVMetadata && s.Mode != "sev" && s.Mode != "seves" {
			ps = append(ps, c.Problem(p+".firmware", fmt.Sprintf("firmware %q has no SEV metadata: it cannot launch an SEV-SNP guest", s.Firmware), "use a full OVMF.fd build, not a variable store or a non-SEV build"))
		}
	}
	return ps
}
