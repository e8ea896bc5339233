// Package release composes the release pipeline: build → measure → gpu →
// encrypt → sbom → policies → sign, over one in-memory inventory that each
// stage extends. The inventory holds every file written (its size and
// digests, taken from what the stage already computed: the image lock's
// output digests, the model manifest's ciphertext digests, the documents'
// bytes) and the typed documents (refvalues.Release), so no stage reads
// another's output back from disk and each large byte is hashed once per
// algorithm. `verify --rebuild` runs the same stage functions.
//
// The package never prints: stage progress goes to Options.Progress.
package release

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/internal/progress"
	"github.com/cvmkit/cvmkit/outcome"
)

// Options are a release run's settings beside its config.
type Options struct {
	// Output is the new release folder; Secrets the new folder for
	// key-authority secrets ("" when the release makes none, see
	// [SecretsFolder]).
	Output, Secrets string
	// Sign makes the sigstore bundle of a statement; SignerName says who
	// signed (a key path, a KMS URI, "keyless").
	Sign       func(ctx context.Context, statement []byte) ([]byte, error)
	SignerName string
	// AllowUnbound writes policies for configurations that leave an input
	// unbound (recorded in bindings.json); AzureAuthority is the Microsoft
	// Azure Attestation URL for the azure-skr target.
	AllowUnbound   bool
	AzureAuthority string
	// Epoch, InitBinary and Version are the image build's inputs.
	Epoch      time.Time
	InitBinary []byte
	Version    string
	// Getenv reads the environment the stages consult (VAULT_TOKEN,
	// SOURCE_DATE_EPOCH, CVMKIT_SBOM); nil is os.LookupEnv.
	Getenv func(string) (string, bool)
	// Progress receives a line per stage, heartbeats, warnings and the
	// encryption progress; nil discards them.
	Progress io.Writer
	Log      *slog.Logger
	// Firmware says how firmware the config builds from a recipe is made
	// before the first stage (its Progress and Getenv default to these).
	Firmware FirmwareOptions
}

// Stage is one line of the release summary.
type Stage struct {
	Stage   string   `json:"stage"`
	Status  string   `json:"status"` // done, skipped
	Detail  string   `json:"detail"`
	Outputs []string `json:"outputs,omitempty"`
	Seconds float64  `json:"seconds"`
}

// Result is what a release run made.
type Result struct {
	Release string `json:"release"`
	Output  string `json:"output"`
	// Secrets is the folder of key-authority secrets, when the release has
	// any: never to be published.
	Secrets string `json:"secrets,omitempty"`
	// Firmware is the firmware built from recipes before the stages.
	Firmware []PreparedFirmware `json:"firmware,omitempty"`
	Stages   []Stage            `json:"stages"`
}

// Stages are the pipeline's stage names, in order.
var Stages = []string{"build", "measure", "gpu", "encrypt", "sbom", "policies", "sign"}

// run is one release in progress.
type run struct {
	c        *config.Config
	o        Options
	dir      string // the release folder being filled
	secrets  string // the secrets folder being filled, or ""
	release  string // NAME@VERSION
	inv      *Inventory
	progress io.Writer
	// sbomHelper is cvmkit-sbom, started with the release (see StartSBOM).
	sbomHelper *SBOMHelper
}

// HasSecrets reports whether the release makes a secret: a cleartext data
// keyset for a Trustee KBS.
func HasSecrets(c *config.Config) bool {
	if m := c.Release.Model; m != nil {
		for _, r := range m.Recipients {
			if r.Trustee != nil {
				return true
			}
		}
	}
	return false
}

// SecretsFolder is where a release's secrets go: flag, else the config's
// secrets, else OUT.secrets. It is refused when it exists or overlaps the
// release folder (the data key would be published).
func SecretsFolder(c *config.Config, flag, out string) (string, error) {
	secrets := flag
	if secrets == "" && c.Release.Secrets != "" {
		secrets = c.Resolve(c.Release.Secrets)
	} else if secrets == "" {
		secrets = filepath.Clean(out) + ".secrets"
	}
	return secrets, CheckSecretsFolder(secrets, out)
}

// CheckSecretsFolder refuses a secrets folder that exists or that overlaps
// the release folder out (the key would be published).
func CheckSecretsFolder(secrets, out string) error {
	if err := CheckSecretOutput(secrets, "the secrets folder", out); err != nil {
		return err
	}
	if _, err := os.Lstat(secrets); err == nil {
		return outcome.UsageError(fmt.Errorf("secrets folder %q already exists", secrets),
			"load its keys into the key authority and remove it, or choose another with --secrets-out (cvmkit never writes into an existing secrets folder)")
	}
	return nil
}

// CheckSecretOutput refuses a secret output (a folder or file holding a
// key in the clear: the secrets folder, a keyset file) that lies inside a
// published folder or holds one, compared by where they really are: through
// symbolic links of their existing ancestors, so that a secret cannot reach
// the release through a linked parent folder. what names the output in the
// error.
func CheckSecretOutput(secret, what string, published ...string) error {
	rs, err := RealPath(secret)
	if err != nil {
		return err
	}
	for _, p := range published {
		rp, err := RealPath(p)
		if err != nil {
			return err
		}
		if config.Overlaps(rs, rp) {
			return outcome.UsageError(fmt.Errorf("%s %q and the published folder %q overlap: the data key would be published (resolved: %s and %s)", what, secret, p, rs, rp),
				"keep keys beside the release folder, never in it, such as "+filepath.Clean(p)+".secrets")
		}
	}
	return nil
}

// RealPath is path made absolute with the symbolic links of its longest
// existing ancestor resolved (the rest does not exist yet).
func RealPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var rest []string
	for dir := abs; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				real = filepath.Join(real, rest[i])
			}
			return real, nil
		}
		if filepath.Dir(dir) == dir {
			return abs, nil
		}
		rest = append(rest, filepath.Base(dir))
	}
}

// Run makes the release folder o.Output from the config, stage by stage.
// The folder (and the secrets folder) is built under a private temporary
// name and renamed into place only when every stage passed: a failed run
// leaves nothing that looks complete.
func Run(ctx context.Context, c *config.Config, o Options) (*Result, error) {
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	r := &run{c: c, o: o, release: c.Release.Metadata.Name + "@" + c.Release.Metadata.Version, inv: NewInventory(), progress: o.Progress}
	if r.progress == nil {
		r.progress = io.Discard
	}
	res := &Result{Release: r.release, Output: o.Output, Secrets: o.Secrets}
	// The binding check, before the first stage: a release that the
	// policies stage would refuse is refused now, every configuration at
	// once; with allowUnbound each one is named on the progress stream.
	if ps := BindingProblems(c, o.AllowUnbound); len(ps) > 0 {
		return nil, outcome.PolicyError(&config.Error{Problems: ps})
	}
	if o.AllowUnbound || c.KeyAuthorities.AllowUnbound {
		for _, u := range PredictUnbound(c) {
			fmt.Fprintf(r.progress, "cvmkit: warning: allowUnbound: %s\n", u)
		}
	}
	// Firmware built from a recipe is made (or found in its cache) before
	// anything else: every stage after reads it by its pinned digest.
	fws, err := PrepareFirmware(ctx, c, o.Firmware.orDefaults(r.progress, o.Getenv))
	if err != nil {
		return nil, err
	}
	res.Firmware = fws
	// cvmkit-sbom starts now and builds its licence scanner while the image
	// is built; the sbom stage gives it the image.
	r.sbomHelper = StartSBOM(ctx, o.Getenv)
	defer r.sbomHelper.Abort()
	err = Folders(o.Output, o.Secrets, r.progress, func(tmp, secretsTmp string) error {
		r.dir, r.secrets = tmp, secretsTmp
		if err := r.recordInputs(); err != nil {
			return err
		}
		for i, name := range Stages {
			st, err := r.stage(ctx, i+1, name)
			if err != nil {
				return err
			}
			res.Stages = append(res.Stages, st)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Folders builds the folder out and, when secrets is set, the secrets
// folder beside it, each under a private temporary name (leftovers
// of killed runs are removed and reported first); both are renamed into
// place only when fill succeeds, the secrets first, so there is never a
// release whose secrets are missing.
// Leftovers removed are reported on w.
func Folders(out, secrets string, w io.Writer, fill func(tmp, secretsTmp string) error) error {
	tx, err := atomicfile.Begin(out, 0o755)
	if err != nil {
		return err
	}
	defer tx.Abort()
	stale := tx.Stale
	var stx *atomicfile.DirTx
	if secrets != "" {
		if stx, err = atomicfile.Begin(secrets, 0o700); err != nil {
			return err
		}
		defer stx.Abort()
		stale = append(stale, stx.Stale...)
	}
	for _, s := range stale {
		fmt.Fprintf(w, "cvmkit: removed %s, left by an interrupted run\n", s)
	}
	stmp := ""
	if stx != nil {
		stmp = stx.Path
	}
	if err := fill(tx.Path, stmp); err != nil {
		return err
	}
	if stx != nil {
		if err := stx.Commit(); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		if stx != nil {
			os.RemoveAll(secrets)
		}
		return err
	}
	return nil
}

// stage runs stage n, with a progress line before and after.
func (r *run) stage(ctx context.Context, n int, name string) (Stage, error) {
	total := len(Stages)
	fmt.Fprintf(r.progress, "cvmkit: [%d/%d] %s …\n", n, total, name)
	start := time.Now()
	// A heartbeat for CI logs: a long stage (a large image build, the SBOM
	// of a big root filesystem) says it is still running.
	stop := Heartbeat(r.progress, func() string {
		return fmt.Sprintf("cvmkit: [%d/%d] %s running (%.0f s)\n", n, total, name, time.Since(start).Seconds())
	})
	var detail string
	var outs []string
	var err error
	switch name {
	case "build":
		detail, outs, err = r.build(ctx)
	case "measure":
		detail, outs, err = r.measure(ctx)
	case "gpu":
		detail, outs, err = r.gpu()
	case "encrypt":
		detail, outs, err = r.encrypt(ctx)
	case "sbom":
		detail, outs, err = r.sbom(ctx)
	case "policies":
		detail, outs, err = r.policies()
	case "sign":
		detail, outs, err = r.sign(ctx)
	}
	stop()
	if err != nil {
		fmt.Fprintf(r.progress, "cvmkit: [%d/%d] %s failed\n", n, total, name)
		return Stage{}, fmt.Errorf("release stage %s: %w", name, err)
	}
	st := Stage{Stage: name, Status: "done", Detail: detail, Outputs: outs, Seconds: time.Since(start).Seconds()}
	if d, ok := strings.CutPrefix(detail, "skipped: "); ok && outs == nil {
		st.Status, st.Detail = "skipped", d
	}
	fmt.Fprintf(r.progress, "cvmkit: [%d/%d] %s %s (%.1f s): %s\n", n, total, name, st.Status, st.Seconds, st.Detail)
	return st, nil
}

// Heartbeat writes line() on w every 10 s until stop is called. Only on a
// file (stderr): a test's buffer is not safe for a second writer.
func Heartbeat(w io.Writer, line func() string) (stop func()) {
	if _, ok := w.(*os.File); !ok {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * progress.PlainEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				io.WriteString(w, line())
			}
		}
	}()
	return func() { close(done) }
}
