package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/encrypt"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/internal/progress"
	"github.com/cvmkit/cvmkit/launch"
	"github.com/cvmkit/cvmkit/measure/gpu"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/sign"
	"github.com/spf13/cobra"
)

// releaseStage is one line of the release summary.
type releaseStage struct {
	Stage   string   `json:"stage"`
	Status  string   `json:"status"` // done, skipped
	Detail  string   `json:"detail"`
	Outputs []string `json:"outputs,omitempty"`
	Seconds float64  `json:"seconds"`
}

type releaseResult struct {
	Release string `json:"release"`
	Output  string `json:"output"`
	// Secrets is the folder of key-authority secrets, when the release has
	// any: never to be published.
	Secrets string         `json:"secrets,omitempty"`
	Stages  []releaseStage `json:"stages"`
}

func (a *app) releaseCmd() *cobra.Command {
	var file, out, secretsOut, key, kmsURI, initBinary, authority string
	var keyless, allowUnbound bool
	cmd := &cobra.Command{
		Use:   "release -f cvmkit.yaml [-o DIR]",
		Short: "Run the whole release: build, measure, GPU references, encrypt, SBOMs, policies, sign",
		Long: `Make a complete release folder from a release config, stage by stage, with a
line of progress per stage on stderr and a summary at the end:

  build      the guest image (image/, as cvmkit build)
  measure    every platforms.snp and platforms.tdx configuration, bound to the
             built kernel, initrd and command line
             (measurements/snp-NAME.json, tdx-NAME[-Nvcpu].json)
  gpu        the GPU reference values from gpu.rims (gpu/gpu-reference.json)
  encrypt    the model weights for model.recipients (model/)
  sbom       SPDX 2.3 and CycloneDX 1.6 of the image: root filesystem packages,
             kernel, initrd contents, firmware (sbom/)
  policies   keyAuthorities.targets (key-authority/TARGET/), with the binding
             check: a configuration that leaves the kernel, initrd, command
             line or root filesystem unbound is refused unless
             keyAuthorities.allowUnbound or --allow-unbound (recorded in
             key-authority/*/bindings.json, which is signed)
  sign       reference values and provenance (attestations/), with the key,
             KMS key or keyless signing of signing: (or the flags)

DIR (default: the config's output) must not exist; the release is built in a
private (0700) hidden sibling folder and renamed into place only when every
stage passed, so a failed run leaves no release that looks complete; the
leftovers of a killed run are removed by the next one. The layout is in
docs/release.md; verify it with 'cvmkit verify DIR --key … --rebuild cvmkit.yaml'.

DIR holds only what may be published. Secrets for a key authority (the data
keyset a Trustee KBS serves, for a trustee recipient) go to a separate
folder, --secrets-out or the config's secrets (default DIR.secrets beside
DIR): mode 0700, files 0600, never signed, refused if it exists. Load them
into the key authority, then keep or destroy them; never upload them.`,
		Example: `  COSIGN_PASSWORD=… cvmkit release -f cvmkit.yaml -o dist
  cvmkit release -f cvmkit.yaml -o dist --key cosign.key --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return outcome.UsageError(errors.New("-f cvmkit.yaml is required"), "give the release config, e.g. -f cvmkit.yaml (see docs/config.md)")
			}
			c, err := loadChecked(file)
			if err != nil {
				return err
			}
			if out == "" {
				out = c.Resolve(c.Output)
			}
			if err := newOutput(out); err != nil {
				return err
			}
			secrets := ""
			if releaseHasSecrets(c) {
				if secrets = secretsOut; secrets == "" && c.Release.Secrets != "" {
					secrets = c.Resolve(c.Release.Secrets)
				} else if secrets == "" {
					secrets = filepath.Clean(out) + ".secrets"
				}
				if err := checkSecretsFolder(secrets, out); err != nil {
					return err
				}
			}
			bundler, signer, err := a.releaseSigner(c, key, kmsURI, keyless)
			if err != nil {
				return err
			}
			r := &releaseRun{a: a, c: c, res: releaseResult{Release: c.Release.Metadata.Name + "@" + c.Release.Metadata.Version, Output: out}}
			r.allowUnbound = allowUnbound || c.Release.KeyAuthorities.AllowUnbound
			r.authority = authority
			r.epoch, r.initBin, err = a.buildInputs(c, initBinary)
			if err != nil {
				return err
			}
			err = a.releaseFolders(out, secrets, func(tmp, secretsTmp string) error {
				r.secrets = secretsTmp
				r.res.Secrets = secrets
				for _, s := range []struct {
					name string
					run  func(ctx context.Context, dir string) (string, []string, error)
				}{
					{"build", r.build}, {"measure", r.measure}, {"gpu", r.gpu}, {"encrypt", r.encrypt},
					{"sbom", r.sbom}, {"policies", r.policies},
					{"sign", func(ctx context.Context, dir string) (string, []string, error) {
						signed, err := sign.SignRelease(ctx, dir, bundler)
						if err != nil {
							return "", nil, err
						}
						var outs []string
						for _, s := range signed {
							outs = append(outs, s.Statement, s.Bundle)
						}
						return "signed with " + signer, outs, nil
					}},
				} {
					if err := r.stage(cmd.Context(), s.name, tmp, s.run); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			return a.emit(r.res, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "stage\tstatus\tseconds\tdetail")
				for _, s := range r.res.Stages {
					fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\n", s.Stage, s.Status, s.Seconds, s.Detail)
				}
				tw.Flush()
				fmt.Fprintf(w, "release %s in %s\n", r.res.Release, out)
				if secrets != "" {
					fmt.Fprintf(w, "secrets for the key authority (do not publish) in %s\n", secrets)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the release config (cvmkit.yaml)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "new release folder (default: the config's output)")
	cmd.Flags().StringVar(&secretsOut, "secrets-out", "", "new folder for key-authority secrets, outside the release (default: the config's secrets, else DIR.secrets)")
	cmd.Flags().StringVar(&key, "key", "", "cosign private key to sign with (overrides signing.key)")
	cmd.Flags().StringVar(&kmsURI, "kms", "", "KMS key URI to sign with (overrides signing.key)")
	cmd.Flags().BoolVar(&keyless, "keyless", false, "sign keylessly (overrides signing)")
	cmd.Flags().BoolVar(&allowUnbound, "allow-unbound", false, "write policies even for configurations that leave an input unbound (recorded)")
	cmd.Flags().StringVar(&authority, "azure-authority", "", "the Microsoft Azure Attestation URL, for the azure-skr target")
	cmd.Flags().StringVar(&initBinary, "init-binary", "", "use this cvmkit-init (linux/amd64) instead of the embedded one")
	return cmd
}

// releaseHasSecrets reports whether the release makes a secret: a
// cleartext data keyset for a Trustee KBS.
func releaseHasSecrets(c *config.Config) bool {
	if m := c.Release.Model; m != nil {
		for _, r := range m.Recipients {
			if r.Trustee != nil {
				return true
			}
		}
	}
	return false
}

// checkSecretsFolder refuses a secrets folder that exists or that overlaps
// the release folder (the key would be published).
func checkSecretsFolder(secrets, out string) error {
	as, err1 := filepath.Abs(secrets)
	ao, err2 := filepath.Abs(out)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if config.Overlaps(as, ao) {
		return outcome.UsageError(fmt.Errorf("the secrets folder %q and the release folder %q overlap: the data key would be published", secrets, out),
			"give --secrets-out (or secrets: in cvmkit.yaml) a folder beside the release, such as "+filepath.Clean(out)+".secrets")
	}
	if _, err := os.Lstat(secrets); err == nil {
		return outcome.UsageError(fmt.Errorf("secrets folder %q already exists", secrets),
			"load its keys into the key authority and remove it, or choose another with --secrets-out (cvmkit never writes into an existing secrets folder)")
	}
	return nil
}

// releaseFolders builds the release folder and, when secrets is set, the
// secrets folder beside it, each under a private temporary name (leftovers
// of killed runs are removed and reported first); both are renamed into
// place only when fill succeeds, the secrets first, so there is never a
// release whose secrets are missing.
func (a *app) releaseFolders(out, secrets string, fill func(tmp, secretsTmp string) error) error {
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
		fmt.Fprintf(a.stderr, "cvmkit: removed %s, left by an interrupted run\n", s)
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

type releaseRun struct {
	a            *app
	c            *config.Config
	res          releaseResult
	secrets      string // the secrets folder being filled
	lock         *build.Lock
	epoch        time.Time
	initBin      []byte
	allowUnbound bool
	authority    string
}

// stage runs one stage, printing a progress line on stderr.
func (r *releaseRun) stage(ctx context.Context, name, dir string, run func(context.Context, string) (string, []string, error)) error {
	n := len(r.res.Stages) + 1
	fmt.Fprintf(r.a.stderr, "cvmkit: [%d/7] %s …\n", n, name)
	start := time.Now()
	// A heartbeat for CI logs: a long stage (a large image build, the SBOM
	// of a big root filesystem) says it is still running.
	stop := heartbeat(r.a.stderr, func() string {
		return fmt.Sprintf("cvmkit: [%d/7] %s running (%.0f s)\n", n, name, time.Since(start).Seconds())
	})
	detail, outs, err := run(ctx, dir)
	stop()
	if err != nil {
		fmt.Fprintf(r.a.stderr, "cvmkit: [%d/7] %s failed\n", n, name)
		return fmt.Errorf("release stage %s: %w", name, err)
	}
	st := releaseStage{Stage: name, Status: "done", Detail: detail, Outputs: outs, Seconds: time.Since(start).Seconds()}
	if d, ok := strings.CutPrefix(detail, "skipped: "); ok && outs == nil {
		st.Status, st.Detail = "skipped", d
	}
	fmt.Fprintf(r.a.stderr, "cvmkit: [%d/7] %s %s (%.1f s): %s\n", n, name, st.Status, st.Seconds, st.Detail)
	r.res.Stages = append(r.res.Stages, st)
	return nil
}

// heartbeat writes line() on w every 10 s until stop is called. Only on a
// file (stderr): a test's buffer is not safe for a second writer.
func heartbeat(w io.Writer, line func() string) (stop func()) {
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

func (r *releaseRun) build(ctx context.Context, dir string) (string, []string, error) {
	res, err := build.Build(ctx, r.c, build.Options{OutDir: filepath.Join(dir, "image"), Epoch: r.epoch, InitBinary: r.initBin, Version: Version().Version, Log: r.a.log})
	if err != nil {
		return "", nil, err
	}
	r.lock = &res.Lock
	var outs []string
	for _, o := range res.Lock.Outputs {
		outs = append(outs, "image/"+o.Name)
	}
	return "root hash " + res.Lock.Verity.RootHash, outs, nil
}

func (r *releaseRun) firmware(name string) (config.Firmware, error) {
	for _, f := range r.c.Release.Firmware {
		if f.Name == name {
			return f, nil
		}
	}
	return config.Firmware{}, fmt.Errorf("no firmware named %q", name)
}

func writeDoc(dir, rel string, v any) error {
	var buf bytes.Buffer
	if err := writeJSON(&buf, v); err != nil {
		return err
	}
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, buf.Bytes(), 0o644)
}

// measure computes every configured platform against the built image. Paths
// in the documents are written relative to the config (firmware, ACPI
// tables) or the release (image/…), never as this machine's paths.
func (r *releaseRun) measure(ctx context.Context, dir string) (string, []string, error) {
	p := r.c.Release.Platforms
	if len(p.SNP) == 0 && len(p.TDX) == 0 {
		return "skipped: the config has no platforms", nil, nil
	}
	image := filepath.Join(dir, "image")
	cmdline, err := os.ReadFile(filepath.Join(image, "cmdline.txt"))
	if err != nil {
		return "", nil, err
	}
	cmd := strings.TrimRight(string(cmdline), "\n")
	var outs []string
	values, docs := 0, 0
	for _, s := range p.SNP {
		fw, err := r.firmware(s.Firmware)
		if err != nil {
			return "", nil, err
		}
		f := &snpFlags{mode: string(s.Mode), ovmf: r.c.Resolve(fw.Path), vcpus: s.VCPUs, vcpuTypes: s.VCPUTypes, vmmTypes: []string{string(s.VMM)},
			guestFeatures: "0x1", policy: "0x30000", profile: s.Profile, outputFormat: "hex"}
		if f.mode == "" {
			f.mode = "snp"
		}
		if f.profile == "" {
			f.profile = "current"
		}
		if s.GuestFeatures != nil {
			f.guestFeatures = fmt.Sprintf("%#x", uint64(*s.GuestFeatures))
		}
		if s.Policy != nil {
			f.policy = fmt.Sprintf("%#x", uint64(*s.Policy))
		}
		if s.HostData != nil {
			f.hostData = fmt.Sprintf("%x", []byte(*s.HostData))
		}
		if s.KernelHashes {
			f.kernel, f.initrd, f.appendArg, f.appendSet = filepath.Join(image, "vmlinuz"), filepath.Join(image, "initrd.img"), cmd, true
		}
		if s.IDBlock != nil {
			f.idKey = r.c.Resolve(s.IDBlock.IDKey)
			if s.IDBlock.AuthorKey != "" {
				f.authorKey = r.c.Resolve(s.IDBlock.AuthorKey)
			}
			f.familyID, f.imageID, f.guestSVN = fmt.Sprintf("%x", []byte(s.IDBlock.FamilyID)), fmt.Sprintf("%x", []byte(s.IDBlock.ImageID)), s.IDBlock.GuestSVN
		}
		if s.SVSM != nil {
			f.svsm = r.c.Resolve(s.SVSM.Path)
			f.varsSize = strconv.FormatInt(int64(s.VarsSize), 10)
		}
		res, _, _, err := r.a.measureSNP(f)
		if err != nil {
			return "", nil, fmt.Errorf("platforms.snp %s: %w", s.Name, err)
		}
		res.Firmware.Path = string(fw.Path)
		relPaths(res.Kernel, "image/vmlinuz")
		relPaths(res.Initrd, "image/initrd.img")
		if t := s.MinimumTCB; t != nil {
			res.MinimumTCB = &refvalues.TCB{Bootloader: uint8(t.Bootloader), TEE: uint8(t.TEE), SNP: uint8(t.SNP), Microcode: uint8(t.Microcode)}
		}
		if res.SVSM != nil {
			res.SVSM.Path = string(s.SVSM.Path)
		}
		rel := "measurements/snp-" + s.Name + ".json"
		if err := writeDoc(dir, rel, res); err != nil {
			return "", nil, err
		}
		outs = append(outs, rel)
		docs++
		values += len(res.Measurements)
		recipes, err := r.snpRecipes(dir, "snp-"+s.Name, rel, fw, s, res)
		if err != nil {
			return "", nil, fmt.Errorf("platforms.snp %s: launch recipe: %w", s.Name, err)
		}
		outs = append(outs, recipes...)
	}
	for _, t := range p.TDX {
		fw, err := r.firmware(t.Firmware)
		if err != nil {
			return "", nil, err
		}
		for _, n := range t.VCPUs {
			f := &tdxFlags{firmware: r.c.Resolve(fw.Path), pageOrder: string(t.PageOrder), qemuVersion: t.QEMUVersion, memory: strconv.FormatInt(int64(t.Memory), 10),
				vcpus: n, profile: t.EDK2Profile, secureBoot: "absent",
				kernel: filepath.Join(image, "vmlinuz"), initrd: filepath.Join(image, "initrd.img"), cmdline: cmd}
			if t.ACPITables != nil {
				f.acpiTables = r.c.Resolve(t.ACPITables.Path)
			}
			if t.GuestMeasuresRTMR2 != nil {
				f.guestCC = optionalBool{set: true, value: *t.GuestMeasuresRTMR2, source: fmt.Sprintf("cvmkit.yaml platforms.tdx %s guestMeasuresRTMR2", t.Name)}
			}
			if t.XFAM != nil {
				f.xfam = fmt.Sprintf("%#x", uint64(*t.XFAM))
			}
			res, _, err := r.a.predictTDX(ctx, f)
			if err != nil {
				return "", nil, fmt.Errorf("platforms.tdx %s: %w", t.Name, err)
			}
			res.Firmware.Path = string(fw.Path)
			relPaths(res.Kernel, "image/vmlinuz")
			relPaths(res.Initrd, "image/initrd.img")
			if res.ACPITables != nil {
				res.ACPITables.Path = string(t.ACPITables.Path)
			}
			rel := "measurements/tdx-" + t.Name + ".json"
			if len(t.VCPUs) > 1 {
				rel = fmt.Sprintf("measurements/tdx-%s-%dvcpu.json", t.Name, n)
			}
			if err := writeDoc(dir, rel, res); err != nil {
				return "", nil, err
			}
			outs = append(outs, rel)
			docs++
			values += len(res.MRTD)
			recipes, err := r.tdxRecipes(dir, strings.TrimSuffix(path.Base(rel), ".json"), rel, fw, t, res)
			if err != nil {
				return "", nil, fmt.Errorf("platforms.tdx %s: launch recipe: %w", t.Name, err)
			}
			outs = append(outs, recipes...)
		}
	}
	return fmt.Sprintf("%d SEV-SNP and TDX configurations, %d launch values, %d launch recipes", docs, values, len(outs)-docs), outs, nil
}

// recipeImage is the release's image as launch recipes name it (paths
// relative to the release folder).
func (r *releaseRun) recipeImage() launch.Image {
	img := launch.Image{Cmdline: r.lock.Cmdline}
	for _, o := range r.lock.Outputs {
		f := launch.File{Path: "image/" + o.Name, SHA256: o.SHA256}
		switch o.Name {
		case build.KernelName:
			img.Kernel = f
		case build.InitrdName:
			img.Initrd = f
		case build.RootImageName:
			img.RootFS = f
		case build.HashTreeName:
			img.HashTree = &f
		}
	}
	return img
}

func firmwareFile(fw config.Firmware) launch.File {
	return launch.File{Path: string(fw.Path), SHA256: strings.TrimPrefix(string(fw.Digest), "sha256:")}
}

// snpRecipes writes launch/DOC.ENTRY.json for each measured SEV-SNP launch.
func (r *releaseRun) snpRecipes(dir, doc, rel string, fw config.Firmware, s config.SNP, res *refvalues.SNP) ([]string, error) {
	var outs []string
	for _, e := range res.Measurements {
		l := launch.SNP{Configuration: doc + "." + e.Name, Document: rel, Measurement: e.Digest, VMM: e.VMM, Mode: string(s.Mode),
			VCPUType: e.VCPUType, VCPUs: e.VCPUs, Policy: uint64(*s.Policy), GuestFeatures: uint64(*s.GuestFeatures),
			KernelHashes: s.KernelHashes, IDBlock: e.IDBlock, IDAuth: e.IDAuth, Firmware: firmwareFile(fw)}
		if s.HostData != nil {
			l.HostData = []byte(*s.HostData)
		}
		if s.IDBlock != nil {
			l.AuthorKey = s.IDBlock.AuthorKey != ""
		}
		rec, err := launch.ForSNP(r.res.Release, r.recipeImage(), l)
		if err != nil {
			return nil, err
		}
		p := "launch/" + l.Configuration + ".json"
		if err := writeDoc(dir, p, rec); err != nil {
			return nil, err
		}
		outs = append(outs, p)
	}
	return outs, nil
}

// tdxRecipes writes launch/DOC[.ORDER].json for a measured TD shape (one
// per MRTD candidate when the page order is open).
func (r *releaseRun) tdxRecipes(dir, doc, rel string, fw config.Firmware, t config.TDX, res *refvalues.TDX) ([]string, error) {
	var outs []string
	for _, m := range res.MRTD {
		name := doc
		if len(res.MRTD) > 1 {
			name += "." + m.PageOrder
		}
		l := launch.TDX{Configuration: name, Document: rel, MRTD: m.Value, RTMR: res.RTMR, QEMUVersion: t.QEMUVersion, Memory: int64(t.Memory),
			VCPUs: res.VCPUs, Firmware: firmwareFile(fw), KernelMeasuresRTMR2: res.GuestCC != nil && *res.GuestCC}
		if t.ACPITables != nil {
			l.ACPITables = &launch.File{Path: string(t.ACPITables.Path), SHA256: strings.TrimPrefix(string(t.ACPITables.Digest), "sha256:")}
		}
		rec, err := launch.ForTDX(r.res.Release, r.recipeImage(), l)
		if err != nil {
			return nil, err
		}
		p := "launch/" + name + ".json"
		if err := writeDoc(dir, p, rec); err != nil {
			return nil, err
		}
		outs = append(outs, p)
	}
	return outs, nil
}

func relPaths(d *refvalues.File, rel string) {
	if d != nil && d.Path != "" {
		d.Path = rel
	}
}

func (r *releaseRun) gpu(_ context.Context, dir string) (string, []string, error) {
	if r.c.Release.GPU == nil {
		return "skipped: the config has no gpu section", nil, nil
	}
	ref, at, n, err := configGPUReference(r.c)
	if err != nil {
		return "", nil, err
	}
	if err := writeDoc(dir, refvalues.GPUPath, ref); err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("%d RIMs verified at %s", n, gpu.FormatTime(at)), []string{refvalues.GPUPath}, nil
}

// configGPUReference verifies the config's gpu.rims at gpu.verifyAt (now
// when unset) into reference values: cvmkit release makes them and cvmkit
// verify --rebuild makes them again.
func configGPUReference(c *config.Config) (*gpu.Reference, time.Time, int, error) {
	g := c.Release.GPU
	at := g.VerifyAt.Time
	if at.IsZero() {
		at = time.Now().UTC().Truncate(time.Second)
	}
	var rims []*gpu.RIM
	var names []string
	for _, f := range g.RIMs {
		p := c.Resolve(f.Path)
		b, _, err := readInput(p, "gpu.rims", 16<<20)
		if err != nil {
			return nil, at, 0, err
		}
		rim, err := gpu.VerifyRIM(b, gpu.RIMOptions{ChainOptions: gpu.ChainOptions{At: at, AllowExpired: g.AllowExpiredSigner}})
		if err != nil {
			return nil, at, 0, classifyGPU(err, "RIM "+p)
		}
		rims = append(rims, rim)
		names = append(names, filepath.Base(p))
	}
	ref, err := gpu.NewReference(rims, names)
	if err != nil {
		return nil, at, 0, classifyGPU(err, "RIMs")
	}
	return ref, at, len(rims), nil
}

func (r *releaseRun) encrypt(ctx context.Context, dir string) (string, []string, error) {
	if r.c.Release.Model == nil {
		return "skipped: the config has no model section", nil, nil
	}
	args, _, releaseID, recipients, _, _, err := encryptFromConfig(r.c.File, filepath.Join(dir, "model"), "", "")
	if err != nil {
		return "", nil, err
	}
	if releaseID == "" {
		releaseID = r.res.Release
	}
	key, deterministic, note, err := r.a.releaseDataKey(r.c)
	if err != nil {
		return "", nil, err
	}
	var wraps []*encrypt.WrappedKey
	for i, rc := range recipients {
		w, err := r.a.wrapFor(ctx, rc, key, releaseID, i)
		if err != nil {
			return "", nil, err
		}
		wraps = append(wraps, w)
	}
	// Progress on stderr: a bar on a terminal, a line every few seconds in
	// a CI log (the weights are the long part of a release).
	var total int64
	if files, err := encrypt.ListSource(args[0]); err == nil {
		for _, f := range files {
			total += f.Size
		}
	}
	bar := progress.New(r.a.stderr, "encrypting the weights", total, progress.Options{Bytes: true})
	m, err := encrypt.EncryptModel(ctx, args[0], filepath.Join(dir, "model"), releaseID, key, wraps, encrypt.Options{Deterministic: deterministic, Progress: bar.Add})
	bar.Done()
	if err != nil {
		return "", nil, err
	}
	if encrypt.HasSecrets(wraps) {
		if r.secrets == "" {
			return "", nil, errors.New("a recipient needs the secrets folder, which this run has not prepared")
		}
		files, err := encrypt.WriteSecrets(r.secrets, wraps)
		if err != nil {
			return "", nil, err
		}
		note += fmt.Sprintf("; %d secret key %s in the secrets folder", len(files), plural(len(files), "file"))
	}
	return fmt.Sprintf("%d %s for %d %s, release %s%s", len(m.Files), plural(len(m.Files), "file"), len(wraps), plural(len(wraps), "recipient"), releaseID, note), []string{"model/" + filepath.Base(refvalues.ModelManifest)}, nil
}

func (r *releaseRun) sbom(ctx context.Context, dir string) (string, []string, error) {
	docs, err := r.a.makeSBOM(ctx, filepath.Join(dir, "image"), r.c.Release.Metadata.Name, r.c.Release.Metadata.Version, configBoot(r.c))
	if err != nil {
		return "", nil, err
	}
	for rel, b := range map[string][]byte{refvalues.SBOMSPDXPath: docs.SPDX, refvalues.SBOMCycloneDX: docs.CycloneDX} {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", nil, err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", nil, err
		}
	}
	return fmt.Sprintf("%d packages", docs.Packages), []string{refvalues.SBOMSPDXPath, refvalues.SBOMCycloneDX}, nil
}

func (r *releaseRun) policies(_ context.Context, dir string) (string, []string, error) {
	targets := r.c.Release.KeyAuthorities.Targets
	if len(targets) == 0 {
		return "skipped: keyAuthorities.targets is empty", nil, nil
	}
	var outs []string
	for _, t := range targets {
		files, _, _, _, err := makePolicies(dir, string(t), r.allowUnbound, "", r.authority,
			"bind the kernel, initrd and command line (platforms.snp kernelHashes with kernel-hashes firmware; platforms.tdx edk2Profile and a guest kernel that measures RTMR2: Linux 6.9+, or guestMeasuresRTMR2: true for a backported EFI stub), or set keyAuthorities.allowUnbound (recorded)")
		if err != nil {
			return "", nil, err
		}
		if err := os.MkdirAll(filepath.Join(dir, "key-authority", string(t)), 0o755); err != nil {
			return "", nil, err
		}
		for n, body := range files {
			rel := "key-authority/" + string(t) + "/" + n
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rel)), body, 0o644); err != nil {
				return "", nil, err
			}
			outs = append(outs, rel)
		}
	}
	sort.Strings(outs)
	detail := fmt.Sprintf("%d targets", len(targets))
	if r.allowUnbound {
		detail += " (allowUnbound: see key-authority/*/bindings.json)"
	}
	return detail, outs, nil
}

// releaseSigner picks the signer: flags first, then the config's signing.
func (a *app) releaseSigner(c *config.Config, key, kmsURI string, keyless bool) (func(context.Context, []byte) ([]byte, error), string, error) {
	if key == "" && kmsURI == "" && !keyless && c.Release.Signing != nil {
		s := c.Release.Signing
		switch {
		case strings.Contains(s.Key, "://"):
			kmsURI = s.Key
		case s.Key != "":
			key = c.Resolve(config.Path(s.Key))
		case s.Keyless != nil:
			keyless = true
		}
	}
	switch {
	case btoi(key != "")+btoi(kmsURI != "")+btoi(keyless) > 1:
		return nil, "", outcome.UsageError(errors.New("give one of --key, --kms and --keyless"))
	case key != "":
		s, err := a.loadSigner(key)
		if err != nil {
			return nil, "", err
		}
		return sign.WithKey(s), key, nil
	case kmsURI != "":
		helper, err := a.helper("cvmkit-sigstore", "CVMKIT_SIGSTORE")
		if err != nil {
			return nil, "", err
		}
		return a.helperBundler(helper, "sign-kms", "--key", kmsURI), kmsURI, nil
	case keyless:
		tok, _ := a.lookupEnv("SIGSTORE_ID_TOKEN")
		if tok == "" {
			return nil, "", outcome.UsageError(errors.New("keyless signing needs SIGSTORE_ID_TOKEN"))
		}
		a.helperEnv = append(a.helperEnv, "SIGSTORE_ID_TOKEN="+tok)
		helper, err := a.helper("cvmkit-sigstore", "CVMKIT_SIGSTORE")
		if err != nil {
			return nil, "", err
		}
		fulcio, rekor := defaultFulcio, defaultRekor
		if k := c.Release.Signing; k != nil && k.Keyless != nil {
			fulcio, rekor = or(k.Keyless.FulcioURL, fulcio), or(k.Keyless.RekorURL, rekor)
		}
		return a.helperBundler(helper, "sign", "--fulcio-url", fulcio, "--rekor-url", rekor), "keyless", nil
	}
	return nil, "", outcome.UsageError(errors.New("no signer: set signing.key or signing.keyless in the config, or pass --key, --kms or --keyless"))
}

// releaseDataKey returns the data key: model.keyset (created when missing)
// with deterministic encryption, or a fresh random key.
func (a *app) releaseDataKey(c *config.Config) (*encrypt.DataKey, bool, string, error) {
	ks := c.Release.Model.Keyset
	if ks == "" {
		k, err := encrypt.NewDataKey()
		return k, false, " (new random data key)", err
	}
	p := c.Resolve(config.Path(ks))
	if b, err := os.ReadFile(p); err == nil {
		a.warnReadableSecret(p, "model.keyset")
		k, err := encrypt.ParseKeyset(b)
		if err != nil {
			return nil, false, "", outcome.InputError(fmt.Errorf("model.keyset %q: %w", p, err))
		}
		return k, true, " (data key " + ks + ", deterministic)", nil
	} else if !os.IsNotExist(err) {
		return nil, false, "", err
	}
	k, err := encrypt.NewDataKey()
	if err != nil {
		return nil, false, "", err
	}
	bin, _, err := k.Cleartext()
	if err != nil {
		return nil, false, "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, false, "", err
	}
	if err := atomicfile.WriteFile(p, bin, 0o600); err != nil {
		return nil, false, "", err
	}
	return k, true, " (created data key " + ks + ", deterministic; keep it secret)", nil
}
