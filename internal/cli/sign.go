package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cvmkit/cvmkit/internal/helper"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/sign"
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
		key, kmsURI, idToken, fulcio, rekor string
		keyless                             bool
	)
	cmd := &cobra.Command{
		Use:   "sign DIR (--key cosign.key | --kms URI | --keyless)",
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
bytes. With --kms, a key held by AWS KMS, Google Cloud KMS, Azure Key Vault or
HashiCorp Vault signs (sigstore's providers, configured by the same
environment as cosign: AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*,
VAULT_ADDR and VAULT_TOKEN); verify with its public key ('cvmkit verify
--key URI' fetches it). With --keyless, an ephemeral key is certified by Fulcio for the OIDC
identity token (--identity-token, else SIGSTORE_ID_TOKEN) and the signature is
recorded in Rekor; this needs the network.

DIR/attestations must not exist yet. Verify with 'cvmkit verify DIR' or
cosign verify-blob-attestation (docs/verify.md).`,
		Example: `  COSIGN_PASSWORD=… cvmkit sign dist --key cosign.key

  # A key in HashiCorp Vault's transit engine:
  VAULT_ADDR=https://vault:8200 VAULT_TOKEN=… cvmkit sign dist --kms hashivault://release

  # In GitHub Actions (id-token: write), keyless:
  SIGSTORE_ID_TOKEN=$(…) cvmkit sign dist --keyless`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return outcome.InputError(fmt.Errorf("release folder %q does not exist", dir))
			}
			if keyless && idToken == "" {
				idToken, _ = a.lookupEnv("SIGSTORE_ID_TOKEN")
			}
			bundle, name, err := a.signer(signerChoice{key: key, kms: kmsURI, keyless: keyless, idToken: idToken, fulcio: fulcio, rekor: rekor},
				"say how to sign: --key FILE, --kms URI or --keyless")
			if err != nil {
				return err
			}
			if keyless {
				name = "keyless (" + fulcio + ", " + rekor + ")"
			}
			signed, err := sign.SignRelease(cmd.Context(), dir, bundle)
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
	cmd.Flags().StringVar(&kmsURI, "kms", "", "a KMS key: awskms://…, gcpkms://…, azurekms://…, hashivault://… (configured as for cosign)")
	cmd.Flags().BoolVar(&keyless, "keyless", false, "sign keylessly with Fulcio and Rekor (needs an OIDC identity token and the network)")
	cmd.Flags().StringVar(&idToken, "identity-token", "", "OIDC identity token for --keyless (default: $SIGSTORE_ID_TOKEN)")
	cmd.Flags().StringVar(&fulcio, "fulcio-url", defaultFulcio, "Fulcio instance for --keyless")
	cmd.Flags().StringVar(&rekor, "rekor-url", defaultRekor, "Rekor instance for --keyless")
	return cmd
}

// signerChoice is how to sign: a key file, a KMS key or keyless.
type signerChoice struct {
	key, kms, idToken, fulcio, rekor string
	keyless                          bool
}

// signer makes the bundle function of a choice (none: usage error with
// none), and names it.
func (a *app) signer(c signerChoice, none string) (func(context.Context, []byte) ([]byte, error), string, error) {
	switch {
	case btoi(c.key != "")+btoi(c.kms != "")+btoi(c.keyless) > 1:
		return nil, "", outcome.UsageError(errors.New("give one of --key, --kms and --keyless"))
	case c.key != "":
		s, err := a.loadSigner(c.key)
		if err != nil {
			return nil, "", err
		}
		return sign.WithKey(s), c.key, nil
	case c.kms != "":
		helper, err := a.helper("cvmkit-sigstore", "CVMKIT_SIGSTORE")
		if err != nil {
			return nil, "", err
		}
		return a.helperBundler(helper, "sign-kms", "--key", c.kms), c.kms, nil
	case c.keyless:
		if c.idToken == "" {
			return nil, "", outcome.UsageError(errors.New("keyless signing needs an OIDC identity token"), "pass --identity-token or set SIGSTORE_ID_TOKEN (in GitHub Actions: the ID token for audience sigstore)")
		}
		a.helperEnv = append(a.helperEnv, "SIGSTORE_ID_TOKEN="+c.idToken)
		helper, err := a.helper("cvmkit-sigstore", "CVMKIT_SIGSTORE")
		if err != nil {
			return nil, "", err
		}
		return a.helperBundler(helper, "sign", "--fulcio-url", cmp.Or(c.fulcio, defaultFulcio), "--rekor-url", cmp.Or(c.rekor, defaultRekor)), "keyless", nil
	}
	return nil, "", outcome.UsageError(errors.New(none))
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

// helperBundler signs each statement with cvmkit-sigstore (keyless, or a
// KMS key): args name the way, the statement and bundle files are added.
// The keyless identity token reaches the helper through its environment,
// never argv.
func (a *app) helperBundler(helper string, args ...string) func(context.Context, []byte) ([]byte, error) {
	return func(ctx context.Context, statement []byte) ([]byte, error) {
		tmp, err := os.MkdirTemp("", "cvmkit-sign-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		in, out := filepath.Join(tmp, "statement.json"), filepath.Join(tmp, "bundle.json")
		if err := os.WriteFile(in, statement, 0o600); err != nil {
			return nil, err
		}
		if _, err := a.runHelper(ctx, helper, append(args, in, out)...); err != nil {
			return nil, err
		}
		return os.ReadFile(out)
	}
}

// runHelper runs a cvmkit helper program and maps its exit code to cvmkit's.
func (a *app) runHelper(ctx context.Context, path string, args ...string) ([]byte, error) {
	return helper.Run(ctx, path, a.helperEnv, args...)
}

// helper finds a cvmkit helper program: $ENV, else beside this executable,
// else on PATH.
func (a *app) helper(name, env string) (string, error) { return helper.Find(name, env, a.lookupEnv) }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
