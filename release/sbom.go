package release

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/epoch"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/internal/helper"
	"github.com/cvmkit/cvmkit/outcome"
)

// SBOMBoot names the boot chain's files an SBOM lists beside the root
// filesystem.
type SBOMBoot struct {
	Kernel, Initrd string
	// Firmware and Vars are NAME=FILE pairs.
	Firmware, Vars []string
}

// ConfigBoot lists the firmware a config's platforms launch with (each
// once, in config order), for the release's SBOM.
func ConfigBoot(c *config.Config) SBOMBoot {
	used := map[string]bool{}
	for _, s := range c.Release.Platforms.SNP {
		used[s.Firmware] = true
	}
	for _, t := range c.Release.Platforms.TDX {
		used[t.Firmware] = true
	}
	var b SBOMBoot
	for _, fw := range c.Release.Firmware {
		if !used[fw.Name] {
			continue
		}
		b.Firmware = append(b.Firmware, fw.Name+"="+c.Resolve(fw.Path))
		if fw.Vars != nil {
			b.Vars = append(b.Vars, fw.Name+"="+c.Resolve(fw.Vars.Path))
		}
	}
	return b
}

// SBOMDocs are the two SBOMs cvmkit-sbom wrote.
type SBOMDocs struct {
	SPDX, CycloneDX []byte
	Packages        int
}

// SBOM is what to catalogue and how to run the helper.
type SBOM struct {
	// Input is an image folder, an EROFS file or a root filesystem folder.
	Input, Name, Version string
	Boot                 SBOMBoot
	// Tool is the cvmkit version the documents name as their creator.
	Tool string
	// Getenv reads SOURCE_DATE_EPOCH and CVMKIT_SBOM.
	Getenv func(string) (string, bool)
}

// MakeSBOM catalogues an image folder, an EROFS file or a root folder by
// running cvmkit-sbom (see sbom/cmd/cvmkit-sbom for why it is separate).
func MakeSBOM(ctx context.Context, r SBOM) (*SBOMDocs, error) {
	return StartSBOM(ctx, r.Getenv).Make(r)
}

// SBOMHelper is cvmkit-sbom started before its input exists: it builds
// its licence scanner (about a CPU-second, most of an SBOM's time on a
// small image) while the release builds the image, and catalogues the
// image when Make gives it its job.
type SBOMHelper struct {
	p    *helper.Process
	path string
	err  error // finding the helper
}

// StartSBOM finds and starts cvmkit-sbom (CVMKIT_SBOM, beside cvmkit, or
// on PATH); an error doing so is returned by Make. Call Make or Abort.
func StartSBOM(ctx context.Context, getenv func(string) (string, bool)) *SBOMHelper {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	path, err := helper.Find("cvmkit-sbom", "CVMKIT_SBOM", getenv)
	if err != nil {
		return &SBOMHelper{err: err}
	}
	return &SBOMHelper{p: helper.Start(ctx, path, "--job-stdin"), path: path}
}

// Abort ends a helper whose job will not come (an earlier stage failed).
func (h *SBOMHelper) Abort() {
	if h.p != nil {
		h.p.Abort()
	}
}

// Make gives the helper its job, r, and returns the two documents.
func (h *SBOMHelper) Make(r SBOM) (*SBOMDocs, error) {
	if h.err != nil {
		return nil, h.err
	}
	defer h.Abort() // when the job is refused before it is given
	input, name, version, boot := r.Input, r.Name, r.Version, r.Boot
	fi, err := os.Stat(input)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("%q: %w", input, fileio.UnwrapPath(err)))
	}
	o := lockInfo{Name: name, Version: version}
	target := input
	if fi.IsDir() && fileExists(filepath.Join(input, "rootfs.img")) {
		target = filepath.Join(input, build.RootImageName)
		if boot.Kernel == "" && fileExists(filepath.Join(input, build.KernelName)) {
			boot.Kernel = filepath.Join(input, build.KernelName)
		}
		if boot.Initrd == "" && fileExists(filepath.Join(input, build.InitrdName)) {
			boot.Initrd = filepath.Join(input, build.InitrdName)
		}
		if err := lockDefaults(filepath.Join(input, "image.lock.json"), &o); err != nil {
			return nil, err
		}
	}
	if t, ok, err := epoch.FromEnv(r.Getenv); err != nil {
		return nil, outcome.UsageError(err)
	} else if ok {
		o.Epoch = t
	}
	if o.Name == "" {
		o.Name = strings.TrimSuffix(filepath.Base(filepath.Clean(input)), filepath.Ext(input))
	}
	tmp, err := os.MkdirTemp("", "cvmkit-sbom-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	outDir := filepath.Join(tmp, "out")
	args := []string{"--name", o.Name, "--version", o.Version, "--epoch", fmt.Sprint(o.Epoch.Unix()), "--tool", r.Tool, "-o", outDir}
	if boot.Kernel != "" {
		args = append(args, "--kernel", boot.Kernel)
	}
	if boot.Initrd != "" {
		args = append(args, "--initrd", boot.Initrd)
	}
	for _, f := range boot.Firmware {
		args = append(args, "--firmware", f)
	}
	for _, f := range boot.Vars {
		args = append(args, "--firmware-vars", f)
	}
	job, err := json.Marshal(append(args, target))
	if err != nil {
		return nil, err
	}
	stdout, err := h.p.Finish(job)
	if err != nil && strings.Contains(err.Error(), "flag provided but not defined: -job-stdin") {
		return nil, outcome.UsageError(fmt.Errorf("%s is older than this cvmkit: it does not take its job on standard input (--job-stdin)", h.path),
			"use the cvmkit-sbom of the same release: make build puts it beside bin/cvmkit; or set CVMKIT_SBOM to it")
	}
	if err != nil {
		return nil, outcome.WithHint(fmt.Errorf("sbom: %w", err), "give an image folder from 'cvmkit build', its rootfs.img, or a root filesystem folder; --initrd must be an initramfs (newc cpio, plain or gzip, zstd, xz) and --kernel a bzImage or UKI")
	}
	var res struct {
		Packages int `json:"packages"`
	}
	_ = json.Unmarshal(stdout, &res)
	d := &SBOMDocs{Packages: res.Packages}
	if d.SPDX, err = os.ReadFile(filepath.Join(outDir, "sbom.spdx.json")); err != nil {
		return nil, err
	}
	if d.CycloneDX, err = os.ReadFile(filepath.Join(outDir, "sbom.cdx.json")); err != nil {
		return nil, err
	}
	return d, nil
}

// lockInfo is what an SBOM's header takes from the image lock.
type lockInfo struct {
	Name, Version string
	Epoch         time.Time
}

// lockDefaults takes the release name, version and epoch from an image lock.
func lockDefaults(path string, o *lockInfo) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var lock struct {
		Release  string `json:"release"`
		Settings struct {
			SourceDateEpoch int64 `json:"sourceDateEpoch"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return outcome.InputError(fmt.Errorf("%s: %w", path, err))
	}
	n, v, _ := strings.Cut(lock.Release, "@")
	if o.Name == "" {
		o.Name = n
	}
	if o.Version == "" {
		o.Version = v
	}
	o.Epoch = time.Unix(lock.Settings.SourceDateEpoch, 0).UTC()
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
