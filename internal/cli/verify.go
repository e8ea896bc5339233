package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/release"
	"github.com/cvmkit/cvmkit/verify"
	"github.com/spf13/cobra"
)

func (a *app) verifyCmd() *cobra.Command {
	var (
		key, identity, identityRegexp, issuer, issuerRegexp, trustedRoot, rebuild, initBinary, inputs string
		skipFirmware                                                                                  bool
	)
	cmd := &cobra.Command{
		Use:   "verify DIR (--key cosign.pub | --certificate-identity ID --certificate-oidc-issuer URL --trusted-root FILE) [--rebuild cvmkit.yaml]",
		Short: "Verify a signed release folder: bundles, every file, and optionally a bit-for-bit rebuild",
		Long: `Check, in order, and list every check run or skipped:

  1. DIR/attestations holds exactly the reference-values and provenance
     statements and their sigstore bundles;
  2. each bundle's DSSE signature, with the public key (--key) or, for keyless
     bundles, the Fulcio certificate issued to --certificate-identity by
     --certificate-oidc-issuer under --trusted-root, with a Rekor entry;
     each statement file equals what its bundle signs;
  3. every file of DIR is a subject of the reference values and every subject
     is a file, with the same SHA-256 (recomputed);
  4. the provenance covers image files with the same digests, and the
     reference values name the lock, model manifest and SBOMs by their digests;
  5. with --rebuild cvmkit.yaml: the image is rebuilt in a temporary folder
     and every file compared bit for bit, then the SBOMs (from the rebuilt
     image) and the GPU reference values (from the config's RIMs at its
     gpu.verifyAt) are recomputed and compared, and every SEV-SNP and TDX
     value of measurements/snp-*.json and tdx-*.json is recomputed from the
     inputs the documents name by digest (config inputs, rebuilt image).
     With --inputs DIR instead: the same from the release's own config
     (inputs/cvmkit.yaml, signed with it), its inputs read under DIR at the
     paths the config gives; what is missing is listed with where to get it
     (inputs/inputs.json).
     Firmware the config builds from a recipe (firmware[].build) is built
     again from source first (minutes; --skip-firmware-build takes the file
     as it is, by its pinned digest, and says so).

Exit codes: 4 a signature or trust failure, 7 a missing or extra file,
5 a changed file or a rebuilt artifact that differs, 3 a bad config.`,
		Example: `  cvmkit verify dist --key cosign.pub
  cvmkit verify dist --key cosign.pub --rebuild cvmkit.yaml
  cvmkit verify dist --key cosign.pub --rebuild cvmkit.yaml --skip-firmware-build

  # An auditor with the release alone: its own config, inputs under ./inputs
  cvmkit verify dist --key cosign.pub --inputs ./inputs

  # A keyless release signed in GitHub Actions:
  cvmkit verify dist --trusted-root trusted_root.json \
      --certificate-identity https://github.com/acme/model/.github/workflows/release.yml@refs/tags/v1.4.0 \
      --certificate-oidc-issuer https://token.actions.githubusercontent.com`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			check, trusted, err := a.trust(cmd.Context(), key, identity, identityRegexp, issuer, issuerRegexp, trustedRoot)
			if err != nil {
				return err
			}
			if rebuild != "" && inputs != "" {
				return outcome.UsageError(errors.New("--rebuild CONFIG and --inputs DIR both say what to rebuild from"), "give --inputs DIR to rebuild from the release's own config, or --rebuild CONFIG for another")
			}
			rep, err := verify.Release(args[0], check, trusted)
			if err == nil && inputs != "" {
				err = a.rebuildFromRelease(cmd.Context(), rep, inputs, initBinary, skipFirmware)
			} else if err == nil && rebuild != "" {
				err = a.rebuild(cmd.Context(), rep, rebuild, initBinary, skipFirmware)
			} else if err == nil {
				rep.Checks = append(rep.Checks, verify.Check{Name: "rebuild", Status: verify.Skipped, Detail: "no --rebuild cvmkit.yaml"})
			}
			if eerr := a.emit(rep, func(w io.Writer) { printVerify(w, rep) }); eerr != nil {
				return eerr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the signer's public key (cosign.pub), or the KMS key URI it signed with")
	cmd.Flags().StringVar(&identity, "certificate-identity", "", "keyless: the signer identity (certificate SAN) to accept")
	cmd.Flags().StringVar(&identityRegexp, "certificate-identity-regexp", "", "keyless: a regular expression the identity must match")
	cmd.Flags().StringVar(&issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer to accept")
	cmd.Flags().StringVar(&issuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the issuer must match")
	cmd.Flags().StringVar(&trustedRoot, "trusted-root", "", "keyless: a sigstore trusted_root.json (Fulcio CAs, Rekor keys); cvmkit never fetches it")
	cmd.Flags().StringVar(&rebuild, "rebuild", "", "rebuild from this release config and compare every artifact")
	cmd.Flags().StringVar(&inputs, "inputs", "", "rebuild from the release's own config (inputs/cvmkit.yaml), with its inputs found under this folder at the paths the config gives")
	cmd.Flags().BoolVar(&skipFirmware, "skip-firmware-build", false, "with --rebuild: take firmware built from a recipe as it is (its digest checked) instead of building it again")
	cmd.Flags().StringVar(&initBinary, "init-binary", "", "with --rebuild: the cvmkit-init the release was built with, if not the embedded one")
	return cmd
}

func (a *app) trust(ctx context.Context, key, identity, identityRegexp, issuer, issuerRegexp, trustedRoot string) (func([]byte) ([]byte, error), string, error) {
	return verify.Trust(ctx, verify.TrustOptions{Key: key, Identity: identity, IdentityRegexp: identityRegexp, Issuer: issuer, IssuerRegexp: issuerRegexp,
		TrustedRoot: trustedRoot, Getenv: a.lookupEnv, HelperEnv: a.helperEnv})
}

// rebuildFromRelease rebuilds the release from its own config, reading the
// inputs under dir.
func (a *app) rebuildFromRelease(ctx context.Context, rep *verify.Report, dir, initBinary string, skipFirmware bool) error {
	c, err := release.OwnConfig(rep.Dir, dir)
	var missing *release.MissingInputsError
	if errors.As(err, &missing) {
		rep.Checks = append(rep.Checks, verify.Check{Name: "rebuild", Status: verify.Failed, Detail: fmt.Sprintf("%d inputs missing or different under %s", len(missing.Lines), dir)})
	}
	if err != nil {
		return err
	}
	t, initBin, err := a.buildInputs(c, initBinary)
	if err != nil {
		return err
	}
	return release.Rebuild(ctx, rep, release.RebuildOptions{Config: c, ConfigName: "the release's own config with --inputs " + dir, Epoch: t, InitBinary: initBin,
		Version: Version().Stamp(), Getenv: a.lookupEnv, Progress: a.stderr, SkipFirmwareBuild: skipFirmware})
}

// rebuild rebuilds the release from its config and compares.
func (a *app) rebuild(ctx context.Context, rep *verify.Report, file, initBinary string, skipFirmware bool) error {
	c, err := loadChecked(file)
	if err != nil {
		return err
	}
	t, initBin, err := a.buildInputs(c, initBinary)
	if err != nil {
		return err
	}
	return release.Rebuild(ctx, rep, release.RebuildOptions{Config: c, ConfigName: "--rebuild " + file, Epoch: t, InitBinary: initBin,
		Version: Version().Stamp(), Getenv: a.lookupEnv, Progress: a.stderr, SkipFirmwareBuild: skipFirmware})
}

func printVerify(w io.Writer, rep *verify.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Status, c.Detail)
	}
	tw.Flush()
	var bad int
	for _, f := range rep.Files {
		if f.Status != verify.OK {
			bad++
			fmt.Fprintf(w, "  %s %s\n", f.Status, refvalues.DisplayPath(f.Path))
		}
	}
	if len(rep.Rebuild) > 0 {
		fmt.Fprintln(w, "rebuild:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range rep.Rebuild {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", refvalues.DisplayPath(c.Path), c.Status, c.Detail)
		}
		tw.Flush()
	}
}
