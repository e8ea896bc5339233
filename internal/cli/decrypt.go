package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/encrypt"
	"github.com/cvmkit/cvmkit/internal/progress"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/spf13/cobra"
)

type decryptResult struct {
	Output    string                  `json:"output"`
	ReleaseID string                  `json:"release_id"`
	KeyID     uint32                  `json:"key_id"`
	Files     []encrypt.ManifestEntry `json:"files"`
	Size      int64                   `json:"size"`
	Seconds   float64                 `json:"seconds"`
}

func (a *app) decryptCmd() *cobra.Command {
	var out, keysetPath, hpkeKey, kmsURI string
	var workers int
	var insecure bool
	cmd := &cobra.Command{
		Use: "decrypt ENCRYPTED -o OUT (--keyset FILE | --hpke-key FILE | --kms URI)",
		// ENCRYPTED is a folder, oci://REGISTRY/REPO@sha256:… or oci-layout://DIR@sha256:….
		Short: "Decrypt an encrypted model",
		Long: `Decrypt a folder written by cvmkit encrypt into a new folder OUT, or an OCI
artifact pulled by digest (oci://REGISTRY/REPO@sha256:… or
oci-layout://DIR@sha256:…; every blob's digest is checked). The data key
comes from a cleartext Tink keyset (--keyset, as a Trustee KBS releases it), from
an HPKE private key that opens the folder's keys/hpke-*.json wrap (--hpke-key), or
from a KMS key that opens keys/kms-*.tink (--kms).

The folder is checked against its manifest first (no missing, extra or resized
file), every segment is authenticated, and each file's size and SHA-256 are
compared with the manifest. Any failure names the file; OUT is renamed into place
only when every file decrypted, so a failure leaves no plaintext that looks
complete.`,
		Example: `  cvmkit decrypt dist/model -o /tmp/weights --hpke-key kbs.hpke.key.json
  cvmkit decrypt dist/model -o /tmp/weights --keyset resource.json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			if out == "" {
				return outcome.UsageError(errors.New("-o OUT is required"), "give a new folder for the decrypted weights, e.g. -o weights")
			}
			if err := newOutput(out); err != nil {
				return err
			}
			if strings.HasPrefix(src, "oci://") || strings.HasPrefix(src, "oci-layout://") {
				tmp, err := os.MkdirTemp("", "cvmkit-pull-*")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				pulled := filepath.Join(tmp, "model")
				if err := encrypt.Pull(src, pulled, insecure); err != nil {
					return err
				}
				src = pulled
			}
			if err := newOutput(out); err != nil {
				return err
			}
			m, err := encrypt.ReadManifest(src)
			if err != nil {
				return outcome.InputError(fmt.Errorf("encrypted model %q: %w", src, err))
			}
			key, err := a.unwrapKey(cmd.Context(), src, m.ReleaseID, keysetPath, hpkeKey, kmsURI)
			if err != nil {
				return err
			}
			var total int64
			for _, f := range m.Files {
				total += f.Size
			}
			bar := progress.New(a.stderr, "decrypting", total, progress.Options{Bytes: true})
			start := time.Now()
			_, err = encrypt.DecryptModel(cmd.Context(), src, out, key, encrypt.Options{Workers: workers, Progress: bar.Add})
			bar.Done()
			if err != nil {
				var ie *encrypt.InventoryError
				switch {
				case errors.As(err, &ie):
					return outcome.InventoryError(err, "the encrypted folder was changed after encryption: restore it from the release")
				case errors.Is(err, encrypt.ErrAuth):
					return outcome.SignatureError(err, "the data key is not this release's, or a file was changed, moved or swapped")
				}
				return err
			}
			res := decryptResult{Output: out, ReleaseID: m.ReleaseID, KeyID: m.KeyID, Files: m.Files, Size: total, Seconds: time.Since(start).Seconds()}
			return a.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %d files, %s decrypted and checked in %.1fs (release %s)\n", out, len(m.Files), progress.Size(total), res.Seconds, m.ReleaseID)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "new folder for the plaintext")
	cmd.Flags().StringVar(&keysetPath, "keyset", "", "the data key as a cleartext Tink keyset (binary or JSON)")
	cmd.Flags().StringVar(&hpkeKey, "hpke-key", "", "HPKE private key file (cvmkit keygen --hpke)")
	cmd.Flags().StringVar(&kmsURI, "kms", "", "KMS key URI that opens keys/kms-*.tink")
	cmd.Flags().IntVar(&workers, "workers", 0, "segments decrypted at once (default: every CPU)")
	cmd.Flags().BoolVar(&insecure, "insecure-registry", false, "talk plain HTTP to the registry (a local test registry)")
	return cmd
}

// unwrapKey gets the data key by whichever means was given.
func (a *app) unwrapKey(ctx context.Context, src, releaseID, keysetPath, hpkeKey, kmsURI string) (*encrypt.DataKey, error) {
	n := 0
	for _, s := range []string{keysetPath, hpkeKey, kmsURI} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, outcome.UsageError(errors.New("give exactly one of --keyset, --hpke-key, --kms"))
	}
	switch {
	case keysetPath != "":
		return a.loadOrNewKey(keysetPath)
	case hpkeKey != "":
		priv, _, err := readInput(hpkeKey, "--hpke-key", 1<<20)
		if err != nil {
			return nil, err
		}
		k, err := encrypt.UnwrapHPKEFrom(src, priv, releaseID)
		if err != nil && errors.Is(err, encrypt.ErrAuth) {
			return nil, outcome.SignatureError(fmt.Errorf("--hpke-key %q: %w", hpkeKey, err), "use the private key whose public key the release was encrypted to")
		}
		if err != nil {
			return nil, outcome.InputError(err)
		}
		return k, nil
	default:
		kek, err := encrypt.KMSAEAD(ctx, kmsURI, a.lookupEnv)
		if err != nil {
			return nil, err
		}
		k, err := encrypt.UnwrapKMSFrom(src, kek, releaseID)
		if err != nil {
			return nil, outcome.SignatureError(fmt.Errorf("--kms key: %w", err))
		}
		return k, nil
	}
}
