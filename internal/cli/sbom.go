package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/internal/epoch"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/spf13/cobra"
)

type sbomResult struct {
	Input     string `json:"input"`
	Packages  int    `json:"packages"`
	SPDX      string `json:"spdx"`
	CycloneDX string `json:"cyclonedx"`
}

func (a *app) sbomCmd() *cobra.Command {
	var out, name, version string
	cmd := &cobra.Command{
		Use:   "sbom IMAGE -o DIR",
		Short: "Write the SBOMs (SPDX 2.3, CycloneDX 1.6) of a guest image's root filesystem",
		Long: `Catalogue a root filesystem with syft and write DIR/sbom.spdx.json (SPDX 2.3) and
DIR/sbom.cdx.json (CycloneDX 1.6). IMAGE is an image folder written by
'cvmkit build' (its rootfs.img is read, dm-verity tree and all), an EROFS image
file, or a root filesystem folder.

The output is reproducible: the creation time is SOURCE_DATE_EPOCH (else the
image lock's sourceDateEpoch), the SPDX namespace and CycloneDX serial number
derive from the content, and keys are sorted; nothing names the host or the
scanning path. The name and version default to the image lock's release.`,
		Example: `  cvmkit sbom dist/image -o dist/sbom
  cvmkit sbom rootfs/ --name mymodel --version 1.2.0 -o sbom`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return outcome.UsageError(fmt.Errorf("-o DIR is required"))
			}
			if err := newOutput(out); err != nil {
				return err
			}
			docs, err := a.makeSBOM(cmd.Context(), args[0], name, version)
			if err != nil {
				return err
			}
			res := sbomResult{Input: args[0], Packages: docs.Packages, SPDX: filepath.Join(out, "sbom.spdx.json"), CycloneDX: filepath.Join(out, "sbom.cdx.json")}
			err = atomicfile.Dir(out, func(tmp string) error {
				if err := os.WriteFile(filepath.Join(tmp, "sbom.spdx.json"), docs.SPDX, 0o644); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(tmp, "sbom.cdx.json"), docs.CycloneDX, 0o644)
			})
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "%d packages\n%s\n%s\n", res.Packages, res.SPDX, res.CycloneDX)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "new folder for sbom.spdx.json and sbom.cdx.json")
	cmd.Flags().StringVar(&name, "name", "", "name of the system described (default: the image lock's release name)")
	cmd.Flags().StringVar(&version, "version", "", "its version (default: the image lock's release version)")
	return cmd
}

// sbomDocs are the two SBOMs cvmkit-sbom wrote.
type sbomDocs struct {
	SPDX, CycloneDX []byte
	Packages        int
}

// makeSBOM catalogues an image folder, an EROFS file or a root folder by
// running cvmkit-sbom (see cmd/cvmkit-sbom for why it is separate).
func (a *app) makeSBOM(ctx context.Context, input, name, version string) (*sbomDocs, error) {
	fi, err := os.Stat(input)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("%q: %w", input, unwrapPath(err)))
	}
	o := lockInfo{Name: name, Version: version}
	target := input
	if fi.IsDir() && fileExists(filepath.Join(input, "rootfs.img")) {
		target = filepath.Join(input, "rootfs.img")
		if err := lockDefaults(filepath.Join(input, "image.lock.json"), &o); err != nil {
			return nil, err
		}
	}
	if t, ok, err := epoch.FromEnv(a.lookupEnv); err != nil {
		return nil, outcome.UsageError(err)
	} else if ok {
		o.Epoch = t
	}
	if o.Name == "" {
		o.Name = strings.TrimSuffix(filepath.Base(filepath.Clean(input)), filepath.Ext(input))
	}
	helper, err := a.helper("cvmkit-sbom", "CVMKIT_SBOM")
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "cvmkit-sbom-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	outDir := filepath.Join(tmp, "out")
	stdout, err := a.runHelper(ctx, helper, "--name", o.Name, "--version", o.Version, "--epoch", fmt.Sprint(o.Epoch.Unix()), "--tool", Version().Version, "-o", outDir, target)
	if err != nil {
		return nil, outcome.WithHint(fmt.Errorf("sbom: %w", err), "give an image folder from 'cvmkit build', its rootfs.img, or a root filesystem folder")
	}
	var res struct {
		Packages int `json:"packages"`
	}
	_ = json.Unmarshal(stdout, &res)
	d := &sbomDocs{Packages: res.Packages}
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
