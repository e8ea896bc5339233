package release

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

// InputsOf lists the config's inputs as the release records them, each
// with where it comes from.
func InputsOf(c *config.Config) []refvalues.Input {
	var out []refvalues.Input
	for _, in := range c.Inputs() {
		r := refvalues.Input{Key: in.Key, Path: in.Path, SHA256: strings.TrimPrefix(string(in.Digest), "sha256:"), Dir: in.Dir}
		switch {
		case in.Recipe != "":
			r.Origin = "built from source: cvmkit firmware build " + in.Recipe + " (docs/firmware.md); cvmkit verify --inputs builds it into this path"
		case in.Origin != nil:
			r.Origin = in.Origin.String()
		case in.Dir && strings.HasSuffix(in.Key, ".layout"):
			r.Origin = "an OCI image layout folder the release engineer supplied; the config pins the image in it by digest"
		case in.Dir:
			r.Origin = "a folder the release engineer supplied (not pinned by digest)"
		default:
			r.Origin = "a file the release engineer supplied (no origin in the config)"
		}
		out = append(out, r)
	}
	return out
}

// recordInputs writes the release's own config and its inputs manifest
// into the release (signed with the rest).
func (r *run) recordInputs() error {
	raw, err := os.ReadFile(r.c.File)
	if err != nil {
		return fmt.Errorf("recording the config: %w", err)
	}
	if err := r.inv.WriteFile(r.dir, refvalues.InputsConfig, raw); err != nil {
		return err
	}
	return r.inv.WriteDoc(r.dir, refvalues.InputsManifest, refvalues.Inputs{Release: r.release, Inputs: InputsOf(r.c)})
}

// MissingInputs checks the inputs of c (the release's own config, read
// against an auditor's inputs folder) and returns one line per input that
// is missing or differs, saying where to get it.
func MissingInputs(c *config.Config) []string {
	var lines []string
	for _, in := range InputsOf(c) {
		if strings.HasPrefix(in.Key, "model.") {
			continue // the weights are not rebuilt: their ciphertexts are checked by digest
		}
		p := c.Resolve(config.Path(in.Path))
		fi, err := os.Stat(p)
		switch {
		case err != nil && strings.HasPrefix(in.Origin, "built from source"):
			continue // PrepareFirmware builds it
		case err != nil:
			lines = append(lines, fmt.Sprintf("%s: %s is missing; get it from: %s", in.Key, in.Path, in.Origin))
		case in.Dir != fi.IsDir():
			lines = append(lines, fmt.Sprintf("%s: %s is not a %s", in.Key, in.Path, map[bool]string{true: "folder", false: "file"}[in.Dir]))
		case in.SHA256 != "":
			if d, err := config.FileDigest(p); err != nil || string(d) != "sha256:"+in.SHA256 {
				lines = append(lines, fmt.Sprintf("%s: %s has sha256 %s, the release pins %s; get it from: %s", in.Key, in.Path, strings.TrimPrefix(string(d), "sha256:"), in.SHA256, in.Origin))
			}
		}
	}
	return lines
}

// OwnConfig reads the release's own config (inputs/cvmkit.yaml) as if it
// lay in inputsDir, so that its relative paths name the auditor's copies
// of the inputs, and checks them: what is missing or different is one
// error listing each, with where to get it (inputs/inputs.json's origins).
func OwnConfig(releaseDir, inputsDir string) (*config.Config, error) {
	raw, err := os.ReadFile(filepath.Join(releaseDir, filepath.FromSlash(refvalues.InputsConfig)))
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("%s has no %s: it was made before releases carried their config", releaseDir, refvalues.InputsConfig),
			"rebuild from the cvmkit.yaml it was made from instead")
	}
	abs, err := filepath.Abs(inputsDir)
	if err != nil {
		return nil, err
	}
	c, err := config.Parse(filepath.Join(abs, "cvmkit.yaml"), raw)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("the release's %s: %w", refvalues.InputsConfig, err))
	}
	if missing := MissingInputs(c); len(missing) > 0 {
		return nil, outcome.InputError(&MissingInputsError{Dir: inputsDir, Lines: missing},
			"put each file at its path under "+inputsDir+" (inputs/inputs.json lists them with their digests and origins)")
	}
	return c, nil
}

// MissingInputsError lists the inputs that are missing or differ under Dir.
type MissingInputsError struct {
	Dir   string
	Lines []string
}

func (e *MissingInputsError) Error() string {
	return fmt.Sprintf("the inputs under %s are not the release's:\n  %s", e.Dir, strings.Join(e.Lines, "\n  "))
}
