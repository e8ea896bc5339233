package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/release"
	"github.com/spf13/cobra"
)

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
			o := release.Options{Output: out, AllowUnbound: allowUnbound, AzureAuthority: authority, Version: Version().Stamp(),
				Getenv: a.lookupEnv, Progress: a.stderr, Log: a.log}
			if release.HasSecrets(c) {
				if o.Secrets, err = release.SecretsFolder(c, secretsOut, out); err != nil {
					return err
				}
			}
			if o.Sign, o.SignerName, err = a.releaseSigner(c, key, kmsURI, keyless); err != nil {
				return err
			}
			if o.Epoch, o.InitBinary, err = a.buildInputs(c, initBinary); err != nil {
				return err
			}
			res, err := release.Run(cmd.Context(), c, o)
			if err != nil {
				return err
			}
			secrets := res.Secrets
			return a.emit(res, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "stage\tstatus\tseconds\tdetail")
				for _, s := range res.Stages {
					fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\n", s.Stage, s.Status, s.Seconds, s.Detail)
				}
				tw.Flush()
				fmt.Fprintf(w, "release %s in %s\n", res.Release, out)
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
	c2 := signerChoice{key: key, kms: kmsURI, keyless: keyless}
	if keyless {
		c2.idToken, _ = a.lookupEnv("SIGSTORE_ID_TOKEN")
		if k := c.Release.Signing; k != nil && k.Keyless != nil {
			c2.fulcio, c2.rekor = k.Keyless.FulcioURL, k.Keyless.RekorURL
		}
	}
	return a.signer(c2, "no signer: set signing.key or signing.keyless in the config, or pass --key, --kms or --keyless")
}
