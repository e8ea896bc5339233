package cli

import (
	"fmt"
	"io"

	"github.com/cvmkit/cvmkit/firmware"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/spf13/cobra"
)

func (a *app) firmwareCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "firmware",
		Short: "Build firmware that binds the image, from pinned source, reproducibly",
		Long: `Build the OVMF firmware a release needs to bind its kernel, initrd and command
line, from Debian's edk2 source package pinned by digest, with Debian bookworm's
toolchain pinned by package versions: anyone who runs the same recipe gets the
same bytes (docs/firmware.md).`,
		Example: `  cvmkit firmware build amdsev -o OVMF.amdsev.fd
  cvmkit firmware list`,
	}
	cmd.AddCommand(a.firmwareBuildCmd(), a.firmwareListCmd())
	return group(cmd)
}

// firmwareCache is where built firmware and sources are kept by default.
func (a *app) firmwareCache() string {
	return firmware.DefaultCache(a.lookupEnv)
}

func (a *app) firmwareBuildCmd() *cobra.Command {
	var out, cache string
	var rebuild bool
	var jobs int
	cmd := &cobra.Command{
		Use:   "build NAME [-o FILE]",
		Short: "Build a firmware recipe (amdsev) or take it from the cache",
		Long: `Build the firmware recipe NAME: fetch its source tarballs (checked against the
SHA-256 Debian's signed Sources index gives), apply Debian's patches, check the
toolchain's Debian package versions, and run edk2's build in a fixed folder with a
fixed environment. The firmware and FILE.provenance.json (sources, patches,
toolchain, command, flags, environment) are kept in --cache by the recipe's digest:
a second build is instant; --rebuild builds again and checks the bytes are the same.

Sources are fetched with apt's own downloader (/usr/lib/apt/apt-helper), from the
Debian archive apt is configured for. The first build takes a few minutes.`,
		Example: `  cvmkit firmware build amdsev -o OVMF.amdsev.fd
  cvmkit firmware build amdsev --rebuild --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := firmware.Lookup(args[0])
			if err != nil {
				return outcome.UsageError(err, "run 'cvmkit firmware list'")
			}
			if cache == "" {
				cache = a.firmwareCache()
			}
			res, err := firmware.Build(cmd.Context(), r, firmware.Options{CacheDir: cache, Rebuild: rebuild, Jobs: jobs, Progress: a.stderr, Fetch: firmware.AptFetch})
			if err != nil {
				return err
			}
			if out != "" {
				if err := atomicfile.Copy(out, res.Path, 0o644); err != nil {
					return err
				}
				if err := atomicfile.Copy(out+".provenance.json", res.Path+".provenance.json", 0o644); err != nil {
					return err
				}
			}
			return a.emit(res.Provenance, func(w io.Writer) {
				state := "built"
				if res.Cached {
					state = "cached"
				}
				fmt.Fprintf(w, "%s %s: %s\n", state, r.Name, res.Path)
				fmt.Fprintf(w, "sha256 %s (%d bytes)\n", res.Provenance.SHA256, res.Provenance.Size)
				if out != "" {
					fmt.Fprintf(w, "wrote %s and %s.provenance.json\n", out, out)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "also copy the firmware (and its provenance) to this file")
	cmd.Flags().StringVar(&cache, "cache", "", "where sources and built firmware are kept (default $XDG_CACHE_HOME/cvmkit/firmware)")
	cmd.Flags().BoolVar(&rebuild, "rebuild", false, "build even if the cache has the firmware, and check the bytes are the same")
	cmd.Flags().IntVar(&jobs, "jobs", 2, "parallel jobs of the edk2 build")
	return cmd
}

func (a *app) firmwareListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the firmware recipes",
		Long:    `List the firmware recipes cvmkit can build, with what each binds and its pinned sources.`,
		Example: `  cvmkit firmware list --json`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []firmware.Recipe
			for _, n := range firmware.Names() {
				rs = append(rs, firmware.Recipes[n])
			}
			return a.emit(rs, func(w io.Writer) {
				for _, r := range rs {
					fmt.Fprintf(w, "%s\t%s\n", r.Name, r.Description)
					fmt.Fprintf(w, "\tfrom %s, digest %s\n", r.Upstream, r.Digest())
				}
			})
		},
	}
}
