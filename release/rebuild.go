package release

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/policy"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/verify"
)

// RebuildOptions say how to rebuild a verified release from its config.
type RebuildOptions struct {
	Config *config.Config
	// ConfigName names the config in messages ("--rebuild cvmkit.yaml").
	ConfigName string
	Epoch      time.Time
	InitBinary []byte
	Version    string
	Getenv     func(string) (string, bool)
	// Progress receives a heartbeat while the rebuild runs.
	Progress io.Writer
	// SkipFirmwareBuild takes firmware the config builds from a recipe as
	// it is (its digest still checked) instead of building it again from
	// source, which takes minutes.
	SkipFirmwareBuild bool
	// Firmware is how firmware is built (tests replace the build).
	Firmware FirmwareOptions
}

// Rebuild is `verify --rebuild`: the image rebuilt and compared bit for
// bit, then what the release stages derive from it made again by the same
// functions (GPU reference values, SBOMs, key-authority policies) and every
// measurement recomputed from its document.
func Rebuild(ctx context.Context, rep *verify.Report, o RebuildOptions) error {
	c := o.Config
	// A rebuild from another release's config would only report every file
	// as different: say what is wrong first.
	if rep.Values != nil {
		if want := c.Metadata.Name + "@" + c.Metadata.Version; rep.Values.Release != want {
			name := o.ConfigName
			if name == "" {
				name = "the config"
			}
			return outcome.UsageError(fmt.Errorf("%s describes release %s, but %s is release %s", name, want, rep.Dir, rep.Values.Release),
				"give the cvmkit.yaml this release was made from (its metadata.name and metadata.version)")
		}
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	// Firmware the config builds from a recipe is built again from source
	// (or, when skipped, taken as it is by its pinned digest), before the
	// measurements are recomputed from it.
	fo := o.Firmware.orDefaults(o.Progress, o.Getenv)
	fo.Rebuild = !o.SkipFirmwareBuild
	fws, err := PrepareFirmware(ctx, c, fo)
	if err != nil {
		rep.Checks = append(rep.Checks, verify.Check{Name: "firmware", Status: verify.Failed, Detail: err.Error()})
		return err
	}
	for _, f := range fws {
		ck := verify.Check{Name: "firmware " + f.Name, Status: verify.OK,
			Detail: fmt.Sprintf("rebuilt from source with recipe %s: sha256 %s, the pinned digest (%.0f s)", f.Recipe, f.SHA256, f.Seconds)}
		if o.SkipFirmwareBuild {
			ck.Status = verify.Skipped
			ck.Detail = fmt.Sprintf("not rebuilt from source (skipped on request): recipe %s's file taken as it is (%s, sha256 %s); 'cvmkit firmware build %s --rebuild' rebuilds it", f.Recipe, f.How, f.SHA256, f.Recipe)
		}
		rep.Checks = append(rep.Checks, ck)
	}
	start := time.Now()
	stop := Heartbeat(o.Progress, func() string {
		return fmt.Sprintf("cvmkit: rebuilding and recomputing %s (%.0f s)\n", rep.Dir, time.Since(start).Seconds())
	})
	defer stop()
	// When the release has SBOMs, cvmkit-sbom builds its licence scanner
	// while the image is rebuilt.
	var sb *SBOMHelper
	if exists(rep.Dir, refvalues.SBOMSPDXPath) || exists(rep.Dir, refvalues.SBOMCycloneDX) {
		sb = StartSBOM(ctx, o.Getenv)
		defer sb.Abort()
	}
	// The image lock records the cvmkit that made the release: another
	// cvmkit may lay out the image differently, which is worth saying
	// before the bytes are compared, and after when they differ.
	made := ""
	if b, err := os.ReadFile(filepath.Join(rep.Dir, filepath.FromSlash(refvalues.LockPath))); err == nil {
		var lock refvalues.Lock
		if json.Unmarshal(b, &lock) == nil {
			made = lock.Cvmkit
		}
	}
	if made != "" && made != o.Version {
		fmt.Fprintf(o.Progress, "cvmkit: note: the release was made by cvmkit %s; this is cvmkit %s\n", made, o.Version)
	}
	err = verify.Rebuild(ctx, rep, verify.RebuildOptions{
		Config: c, Epoch: o.Epoch, InitBinary: o.InitBinary, Version: o.Version,
		Extra: func(ctx context.Context, imageDir string) (map[string][]byte, map[string]string, error) {
			out, why := map[string][]byte{}, map[string]string{}
			if err := rebuildGPU(c, rep, out, why); err != nil {
				return nil, nil, err
			}
			if sb != nil {
				docs, err := sb.Make(SBOM{Input: imageDir, Boot: ConfigBoot(c), Tool: o.Version, Getenv: o.Getenv})
				if err != nil {
					return nil, nil, err
				}
				out[refvalues.SBOMSPDXPath], out[refvalues.SBOMCycloneDX] = docs.SPDX, docs.CycloneDX
			}
			if err := rebuildPolicies(rep.Dir, out, why); err != nil {
				return nil, nil, err
			}
			return out, why, nil
		},
		Values: func(ctx context.Context, imageDir string) ([]verify.Compared, error) {
			return remeasure(ctx, rep.Dir, c, imageDir)
		},
	})
	if err != nil && made != "" && made != o.Version {
		return outcome.WithHint(err, fmt.Sprintf("the release was made by cvmkit %s and this is cvmkit %s: rebuild with that cvmkit (the same commit built any way stamps %s)", made, o.Version, made))
	}
	return err
}

func exists(dir, rel string) bool {
	_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
	return err == nil
}

// rebuildGPU recomputes the GPU reference values from the config's RIMs.
func rebuildGPU(c *config.Config, rep *verify.Report, out map[string][]byte, why map[string]string) error {
	if rep.Values == nil || rep.Values.GPU == nil {
		return nil
	}
	if c.GPU == nil {
		why[refvalues.GPUPath] = "the config has no gpu section"
		return nil
	}
	if c.GPU.VerifyAt.IsZero() {
		why[refvalues.GPUPath] = "gpu.verifyAt is not set, so the reference values depend on the time they were made"
		return nil
	}
	ref, _, _, err := GPUReference(c, time.Now)
	if err != nil {
		return err
	}
	b, err := MarshalDoc(ref)
	if err != nil {
		return err
	}
	out[refvalues.GPUPath] = b
	return nil
}

// rebuildPolicies regenerates each key-authority/TARGET/ folder of the
// release from its (verified) documents, as cvmkit release wrote it.
func rebuildPolicies(dir string, out map[string][]byte, why map[string]string) error {
	entries, err := os.ReadDir(filepath.Join(dir, refvalues.KeyAuthorityDir))
	if err != nil {
		return nil
	}
	docs, err := refvalues.ReadRelease(dir)
	if err != nil {
		return outcome.InputError(err)
	}
	for _, e := range entries {
		target := e.Name()
		base := refvalues.KeyAuthorityDir + "/" + target + "/"
		if target == "azure-skr" {
			why[base] = "the attestation authority URL is not in the release; its policy is verified by signature and digest"
			continue
		}
		var recorded refvalues.Bindings
		if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(base+refvalues.BindingsFile))); err == nil {
			_ = json.Unmarshal(b, &recorded)
		}
		rendered, err := policy.Render(docs, target, policy.RenderOptions{AllowUnbound: recorded.AllowUnbound, UnboundHint: "the release's values no longer pass its own binding check"})
		if err != nil {
			return err
		}
		for n, b := range rendered.Files {
			out[base+n] = b
		}
	}
	return nil
}
