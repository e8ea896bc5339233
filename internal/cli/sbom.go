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

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
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
	var boot sbomBoot
	var firmware, vars []string
	cmd := &cobra.Command{
		Use:   "sbom IMAGE -o DIR",
		Short: "Write the SBOMs (SPDX 2.3, CycloneDX 1.6) of a guest image: root filesystem, kernel, initrd, firmware",
		Long: `Catalogue a root filesystem with syft and write DIR/sbom.spdx.json (SPDX 2.3) and
DIR/sbom.cdx.json (CycloneDX 1.6). IMAGE is an image folder written by
'cvmkit build' (its rootfs.img is read, dm-verity tree and all), an EROFS image
file, or a root filesystem folder.

Beside the root filesystem's packages, the documents list the boot chain:
the kernel (its release from the bzImage setup header), the initrd with the
programs and kernel modules inside it (Go programs by their build
information, modules by .modinfo), and the firmware, each with its SHA-256.
An image folder's vmlinuz and initrd.img are listed by default; --kernel,
--initrd and --firmware name others ('cvmkit release' passes the config's
firmware). See docs/reference-values.md, "SBOMs".

The output is reproducible: the creation time is SOURCE_DATE_EPOCH (else the
image lock's sourceDateEpoch), the SPDX namespace and CycloneDX serial number
derive from the content, and keys are sorted; nothing names the host or the
scanning path. The name and version default to the image lock's release.`,
		Example: `  cvmkit sbom dist/image --firmware debian-bookworm=OVMF.fd -o dist/sbom
  cvmkit sbom rootfs/ --name mymodel --version 1.2.0 -o sbom
  cvmkit sbom rootfs/ --kernel vmlinuz --initrd initrd.img -o sbom`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return outcome.UsageError(fmt.Errorf("-o DIR is required"), "give a new folder for the two SBOMs, e.g. -o dist/sbom")
			}
			if err := newOutput(out); err != nil {
				return err
			}
			var err error
			if boot.Firmware, err = namedFileFlags("--firmware", firmware); err != nil {
				return err
			}
			if boot.Vars, err = namedFileFlags("--firmware-vars", vars); err != nil {
				return err
			}
			docs, err := a.makeSBOM(cmd.Context(), args[0], name, version, boot)
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
	cmd.Flags().StringVar(&boot.Kernel, "kernel", "", "kernel image to list (default: an image folder's vmlinuz)")
	cmd.Flags().StringVar(&boot.Initrd, "initrd", "", "initrd to list with its contents (default: an image folder's initrd.img)")
	cmd.Flags().StringArrayVar(&firmware, "firmware", nil, "NAME=FILE: firmware image to list (repeatable)")
	cmd.Flags().StringArrayVar(&vars, "firmware-vars", nil, "NAME=FILE: firmware variable store template to list (repeatable)")
	return cmd
}

// sbomBoot names the boot chain's files an SBOM lists beside the root
// filesystem.
type sbomBoot struct {
	Kernel, Initrd string
	// Firmware and Vars are NAME=FILE pairs.
	Firmware, Vars []string
}

// namedFileFlags checks NAME=FILE flag values.
func namedFileFlags(flag string, vals []string) ([]string, error) {
	for _, v := range vals {
		if n, f, ok := strings.Cut(v, "="); !ok || n == "" || f == "" {
			return nil, outcome.UsageError(fmt.Errorf("%s %q: want NAME=FILE", flag, v))
		}
	}
	return vals, nil
}

// configBoot lists the firmware a config's platforms launch with (each
// once, in config order), for the release's SBOM.
func configBoot(c *config.Config) sbomBoot {
	used := map[string]bool{}
	for _, s := range c.Release.Platforms.SNP {
		used[s.Firmware] = true
	}
	for _, t := range c.Release.Platforms.TDX {
		used[t.Firmware] = true
	}
	var b sbomBoot
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

// sbomDocs are the two SBOMs cvmkit-sbom wrote.
type sbomDocs struct {
	SPDX, CycloneDX []byte
	Packages        int
}

// makeSBOM catalogues an image folder, an EROFS file or a root folder by
// running cvmkit-sbom (see cmd/cvmkit-sbom for why it is separate).
func (a *app) makeSBOM(ctx context.Context, input, name, version string, boot sbomBoot) (*sbomDocs, error) {
	fi, err := os.Stat(input)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("%q: %w", input, unwrapPath(err)))
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
	args := []string{"--name", o.Name, "--version", o.Version, "--epoch", fmt.Sprint(o.Epoch.Unix()), "--tool", Version().Version, "-o", outDir}
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
	stdout, err := a.runHelper(ctx, helper, append(args, target)...)
	if err != nil {
		return nil, outcome.WithHint(fmt.Errorf("sbom: %w", err), "give an image folder from 'cvmkit build', its rootfs.img, or a root filesystem folder; --initrd must be an initramfs (newc cpio, plain or gzip, zstd, xz) and --kernel a bzImage or UKI")
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
