package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cvmkit/cvmkit/build"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/release"
	"github.com/spf13/cobra"
)

// buildResult is what `cvmkit build --json` prints.
type buildResult struct {
	Output  string      `json:"output"`
	Lock    *build.Lock `json:"lock"`
	Seconds float64     `json:"seconds"`
}

func (a *app) buildCmd() *cobra.Command {
	var file, out, initBinary string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "build -f cvmkit.yaml [-o OUT]",
		Short: "Build the guest image: EROFS root with dm-verity, initrd, kernel, command line",
		Long: `Build the guest image the release config describes (its image section), bit for
bit the same on every machine:

  rootfs.img       the root filesystem: base sources (OCI images pinned by digest,
                   OCI layout folders, local folders) flattened with whiteouts, the
                   overlays on top, as an uncompressed EROFS image; its dm-verity
                   hash tree (format 1, sha256, 4 KiB) appended, or
  rootfs.verity    the hash tree in its own file (image.rootfs.verity: separate)
  initrd.img       cvmkit's init and the listed kernel modules (newc cpio, zstd or
                   gzip), or your own initrd (image.initrd.file)
  vmlinuz          the kernel
  cmdline.txt      the command line rendered with the root hash
  image.lock.json  every input with its resolved digest, every output with sha256
                   and sha384, the settings: what an auditor rebuilds from

Every timestamp is SOURCE_DATE_EPOCH (else the config's sourceDateEpoch, else 0).
The salt comes from the filesystem's own digest. Hostile layers ("..", escaping
links, devices, size bombs) are refused with the entry named. OUT must not exist;
it is built under a temporary name and renamed when complete. Layout, command
line parameters and lock format: docs/image.md.`,
		Example: `  cvmkit build -f cvmkit.yaml                 # into <output>/image
  cvmkit build -f cvmkit.yaml -o /tmp/image --json
  SOURCE_DATE_EPOCH=1764201600 cvmkit build -f cvmkit.yaml -o rebuild && \
    cmp rebuild/image.lock.json dist/image/image.lock.json

  # Boot it (QEMU, appended hash tree):
  qemu-system-x86_64 -m 1G -nographic -kernel OUT/vmlinuz -initrd OUT/initrd.img \
    -append "$(cat OUT/cmdline.txt)" -drive file=OUT/rootfs.img,if=virtio,format=raw,readonly=on`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return outcome.UsageError(fmt.Errorf("-f cvmkit.yaml is required"), "cvmkit build reads the image section of a release config (docs/config.md)")
			}
			c, err := loadChecked(file)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(c.Resolve(c.Output), "image")
			}
			if err := newOutput(out); err != nil {
				return err
			}
			t, initBin, err := a.buildInputs(c, initBinary)
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := build.Build(cmd.Context(), c, build.Options{
				OutDir: out, Epoch: t, InitBinary: initBin, Version: Version().Stamp(), Insecure: insecure, Log: a.log,
			})
			if err != nil {
				return err
			}
			r := buildResult{Output: res.Dir, Lock: &res.Lock, Seconds: time.Since(start).Seconds()}
			return a.emit(r, func(w io.Writer) {
				v := res.Lock.Verity
				fmt.Fprintf(w, "image     %s\n", res.Dir)
				fmt.Fprintf(w, "root hash %s\n", v.RootHash)
				fmt.Fprintf(w, "salt      %s\n", v.Salt)
				fmt.Fprintf(w, "data      %d blocks (%d bytes), hash tree at block %d, %d levels\n", v.DataBlocks, v.DataSize, v.HashStartBlock, v.Levels)
				fmt.Fprintf(w, "cmdline   %s\n", res.Lock.Cmdline)
				for _, o := range res.Lock.Outputs {
					fmt.Fprintf(w, "  %-16s %10d  sha256:%s\n", o.Name, o.Size, o.SHA256)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the release config (cvmkit.yaml)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "new output folder (default: <config output>/image)")
	cmd.Flags().StringVar(&initBinary, "init-binary", "", "use this cvmkit-init (linux/amd64) instead of the embedded one")
	cmd.Flags().BoolVar(&insecure, "insecure-registry", false, "talk plain HTTP to registries (a local test registry)")
	return cmd
}

func (a *app) buildInputs(c *config.Config, initBinary string) (time.Time, []byte, error) {
	return release.BuildInputs(c, a.lookupEnv, initBinary)
}

// loadChecked loads a release config and checks every pinned input before
// anything is built from it.
func loadChecked(file string) (*config.Config, error) {
	c, err := config.Load(file)
	if err != nil {
		return nil, outcome.InputError(err)
	}
	if err := c.CheckInputs(); err != nil {
		return nil, outcome.InputError(err)
	}
	return c, nil
}
