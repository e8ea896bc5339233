package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/release"
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
	var boot release.SBOMBoot
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
			docs, err := release.MakeSBOM(cmd.Context(), release.SBOM{Input: args[0], Name: name, Version: version, Boot: boot, Tool: Version().Stamp(), Getenv: a.lookupEnv})
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

// namedFileFlags checks NAME=FILE flag values.
func namedFileFlags(flag string, vals []string) ([]string, error) {
	for _, v := range vals {
		if n, f, ok := strings.Cut(v, "="); !ok || n == "" || f == "" {
			return nil, outcome.UsageError(fmt.Errorf("%s %q: want NAME=FILE", flag, v))
		}
	}
	return vals, nil
}
