package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/sign"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/spf13/cobra"
)

// Public-good Sigstore endpoints, the defaults for keyless signing.
const (
	defaultFulcio = "https://fulcio.sigstore.dev"
	defaultRekor  = "https://rekor.sigstore.dev"
)

type signResult struct {
	Dir    string        `json:"dir"`
	Signer string        `json:"signer"`
	Signed []sign.Signed `json:"signed"`
}

func (a *app) signCmd() *cobra.Command {
	var (
		key, idToken, fulcio, rekor string
		keyless                     bool
	)
	cmd := &cobra.Command{
		Use:   "sign DIR (--key cosign.key | --keyless)",
		Short: "Sign a release folder: reference values and provenance as sigstore bundles",
		Long: `Write DIR/attestations/ with two in-toto statements and their sigstore bundles
(DSSE envelopes, bundle format v0.3):

  reference-values.intoto.json  subjects: every file of DIR; predicate
                                https://cvmkit.dev/reference-values/v1 (docs/reference-values.md):
                                the SNP/TDX measurements with their assumptions, the
                                GPU references, the dm-verity root hash and command
                                line, the model manifest and SBOM digests
  provenance.intoto.json        SLSA provenance v1 of the image (subjects: image/*),
                                its inputs from image/image.lock.json

With --key (a cosign key pair: 'cvmkit keygen --signing' or 'cosign
generate-key-pair'; password from COSIGN_PASSWORD or the terminal) signatures
are deterministic (RFC 6979): signing the same files again gives the same
bytes. With --keyless, an ephemeral key is certified by Fulcio for the OIDC
identity token (--identity-token, else SIGSTORE_ID_TOKEN) and the signature is
recorded in Rekor; this needs the network.

DIR/attestations must not exist yet. Verify with 'cvmkit verify DIR' or
cosign verify-blob-attestation (docs/verify.md).`,
		Example: `  COSIGN_PASSWORD=… cvmkit sign dist --key cosign.key

  # In GitHub Actions (id-token: write), keyless:
  SIGSTORE_ID_TOKEN=$(…) cvmkit sign dist --keyless`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return outcome.InputError(fmt.Errorf("release folder %q does not exist", dir))
			}
			var (
				kp   sgsign.Keypair
				kl   *sign.Keyless
				name string
			)
			switch {
			case key != "" && keyless:
				return outcome.UsageError(errors.New("give --key or --keyless, not both"))
			case key != "":
				s, err := a.loadSigner(key)
				if err != nil {
					return err
				}
				kp, name = s, key
			case keyless:
				if idToken == "" {
					idToken, _ = a.lookupEnv("SIGSTORE_ID_TOKEN")
				}
				var err error
				if kp, kl, err = sign.PublicGoodKeyless(fulcio, rekor, idToken); err != nil {
					return outcome.UsageError(err, "pass --identity-token or set SIGSTORE_ID_TOKEN (in GitHub Actions: the ID token for audience sigstore)")
				}
				name = "keyless (" + fulcio + ", " + rekor + ")"
			default:
				return outcome.UsageError(errors.New("say how to sign: --key FILE or --keyless"))
			}
			signed, err := sign.SignRelease(cmd.Context(), dir, kp, kl)
			if err != nil {
				return outcome.InputError(fmt.Errorf("signing %s: %w", dir, err))
			}
			res := signResult{Dir: dir, Signer: name, Signed: signed}
			return a.emit(res, func(w io.Writer) {
				for _, s := range signed {
					fmt.Fprintf(w, "%s: %s (%d subjects), bundle %s\n", s.Statement, s.PredicateType, s.Subjects, s.Bundle)
				}
				fmt.Fprintf(w, "signed with %s\n", name)
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "cosign private key file (cosign.key)")
	cmd.Flags().BoolVar(&keyless, "keyless", false, "sign keylessly with Fulcio and Rekor (needs an OIDC identity token and the network)")
	cmd.Flags().StringVar(&idToken, "identity-token", "", "OIDC identity token for --keyless (default: $SIGSTORE_ID_TOKEN)")
	cmd.Flags().StringVar(&fulcio, "fulcio-url", defaultFulcio, "Fulcio instance for --keyless")
	cmd.Flags().StringVar(&rekor, "rekor-url", defaultRekor, "Rekor instance for --keyless")
	return cmd
}

// loadSigner reads a cosign private key, asking for its password.
func (a *app) loadSigner(path string) (*sign.Signer, error) {
	b, _, err := readInput(path, "--key", 1<<20)
	if err != nil {
		return nil, err
	}
	pass, err := a.password(false)
	if err != nil {
		return nil, err
	}
	key, err := sign.LoadPrivateKey(b, pass)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("--key %q: %w", path, err), "give a cosign private key (cvmkit keygen --signing, cosign generate-key-pair) and its password in COSIGN_PASSWORD")
	}
	return sign.NewSigner(key, path)
}
