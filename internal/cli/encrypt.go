package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/encrypt"
	"github.com/cvmkit/cvmkit/internal/progress"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/release"
	"github.com/spf13/cobra"
)

// encryptResult is what `cvmkit encrypt --json` prints.
type encryptResult struct {
	Output         string                  `json:"output"`
	Secrets        string                  `json:"secrets,omitempty"`
	ReleaseID      string                  `json:"release_id"`
	KeyID          uint32                  `json:"key_id"`
	Files          []encrypt.ManifestEntry `json:"files"`
	Size           int64                   `json:"size"`
	CiphertextSize int64                   `json:"ciphertext_size"`
	Wraps          []*encrypt.WrappedKey   `json:"wraps"`
	Seconds        float64                 `json:"seconds"`
	// With --oci-layout / --oci-ref: the artifact's manifest digest and
	// where it went.
	OCIDigest string `json:"oci_digest,omitempty"`
	OCILayout string `json:"oci_layout,omitempty"`
	OCIRef    string `json:"oci_ref,omitempty"`
}

func (a *app) encryptCmd() *cobra.Command {
	var releaseID, out, keysetIn, keysetOut, secretsOut, ociLayout, ociRef, configFile string
	var deterministic bool
	var insecure bool
	var recipients []string
	var workers int
	cmd := &cobra.Command{
		Use:   "encrypt (IN -o OUT --release-id ID --recipient KIND:VALUE… | -f cvmkit.yaml)",
		Short: "Encrypt model weights for the key authority",
		Long: `Encrypt a model folder (or one file) into a new folder OUT: each file in Tink's
streaming AEAD format (AES256_GCM_HKDF_1MB) under one data key, bound to the
release ID and the file's path; OUT/model.manifest.json lists every file with
its size and plaintext and ciphertext SHA-256. The data key (a Tink keyset) is
wrapped for each recipient under OUT/keys/:

  hpke:FILE           an HPKE public key from 'cvmkit keygen --hpke'
  kms:URI             a KMS key-encryption key (Tink encrypted keyset):
                      hcvault:// (Vault transit, VAULT_TOKEN) or fake-kms:// (tests)
  trustee:[REPO/]TYPE/TAG
                      a Trustee KBS resource file: the keyset in the clear, so
                      it goes to the secrets folder (--secrets-out, default
                      OUT.secrets; mode 0700, file 0600), never into OUT
  azure:KEYNAME=FILE  Azure Key Vault import: RSA-OAEP-256 to the RSA public key FILE

Encryption uses every CPU and streams: memory does not grow with the file size.
OUT is built under a temporary name, so an interrupted run leaves nothing that
looks complete. The format is specified in docs/weights-format.md.`,
		Example: `  cvmkit keygen --hpke -o kbs
  cvmkit encrypt weights/ -o dist/model --release-id llama@1.4.0 \
      --recipient hpke:kbs.hpke.pub.json --recipient trustee:default/model/llama
  cvmkit decrypt dist/model -o /tmp/weights --hpke-key kbs.hpke.key.json

  # Also as an OCI artifact, pushed and pulled back by digest:
  cvmkit encrypt weights/ -o dist/model --release-id llama@1.4.0 --recipient hpke:kbs.hpke.pub.json \
      --oci-ref registry.example/models/llama:1.4.0
  cvmkit decrypt oci://registry.example/models/llama@sha256:… -o /tmp/weights --hpke-key kbs.hpke.key.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var typed []encrypt.Recipient
			for _, r := range recipients {
				rc, err := encrypt.ParseRecipient(r)
				if err != nil {
					return err
				}
				typed = append(typed, rc)
			}
			if configFile != "" {
				if len(args) > 0 || releaseID != "" || len(recipients) > 0 {
					return outcome.UsageError(errors.New("with -f, the model, release ID and recipients come from the config"), "drop IN, --release-id and --recipient, or drop -f")
				}
				c, err := config.Load(configFile)
				if err != nil {
					return outcome.InputError(err)
				}
				m := c.Model
				if m == nil {
					return outcome.InputError(fmt.Errorf("%s has no model section", configFile), "add model: {source, recipients} (docs/config.md)")
				}
				args, releaseID, typed = []string{c.Resolve(m.Source)}, m.ReleaseID, encrypt.Recipients(c)
				if out == "" {
					out = filepath.Join(c.Resolve(c.Output), "model")
				}
				if o := m.OCI; o != nil && ociLayout == "" && ociRef == "" {
					ociLayout, ociRef = c.Resolve(o.Layout), o.Ref
				}
			}
			if len(args) != 1 {
				return outcome.UsageError(errors.New("encrypt takes the model folder or file (or -f cvmkit.yaml)"))
			}
			if out == "" {
				return outcome.UsageError(errors.New("-o OUT is required"), "give a new folder for the encrypted weights, e.g. -o dist/model")
			}
			if err := newOutput(out); err != nil {
				return err
			}
			if releaseID == "" {
				return outcome.UsageError(errors.New("--release-id is required: it is bound into every file"), "use the release name and version, such as llama@1.4.0")
			}
			if len(typed) == 0 && keysetOut == "" {
				return outcome.UsageError(errors.New("no --recipient: nobody could ever decrypt the weights"), "add --recipient hpke:FILE (see cvmkit keygen --hpke), or --keyset-out FILE to keep the key yourself")
			}
			key, err := a.loadOrNewKey(keysetIn)
			if err != nil {
				return err
			}
			if deterministic && keysetIn == "" {
				return outcome.UsageError(errors.New("--deterministic needs --keyset"), "with a new random key each run the bytes differ anyway: give the pinned data key with --keyset")
			}
			files, err := encrypt.ListSource(args[0])
			if err != nil {
				return outcome.InputError(fmt.Errorf("model %q: %w", args[0], err))
			}
			var total int64
			for _, f := range files {
				total += f.Size
			}
			bar := progress.New(a.stderr, "encrypting", total, progress.Options{Bytes: true})
			start := time.Now()
			a.log.Info("encrypting", "files", len(files), "bytes", total, "workers", workers)
			m, wraps, secretsOut, err := release.Encrypt(cmd.Context(), release.EncryptJob{Source: args[0], Output: out, ReleaseID: releaseID, Recipients: typed, Key: key,
				SecretsOut: secretsOut, KeysetOut: keysetOut, Options: encrypt.Options{Workers: workers, Progress: bar.Add, Deterministic: deterministic},
				Getenv: a.lookupEnv, Progress: a.stderr})
			bar.Done()
			if err != nil {
				return err
			}
			res := encryptResult{Output: out, Secrets: secretsOut, ReleaseID: releaseID, KeyID: m.KeyID, Files: m.Files, Wraps: wraps, Seconds: time.Since(start).Seconds()}
			if ociLayout != "" || ociRef != "" {
				art, err := encrypt.NewArtifact(out)
				if err != nil {
					return err
				}
				res.OCIDigest = art.Digest.String()
				if ociLayout != "" {
					if err := art.WriteLayout(ociLayout, releaseID); err != nil {
						return fmt.Errorf("writing the OCI layout: %w", err)
					}
					res.OCILayout = ociLayout
				}
				if ociRef != "" {
					dig, err := encrypt.Push(art, ociRef, insecure)
					if err != nil {
						return fmt.Errorf("--oci-ref: %w", err)
					}
					res.OCIRef = dig
				}
			}
			for _, f := range m.Files {
				res.Size += f.Size
				res.CiphertextSize += f.CiphertextSize
			}
			return a.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %d files, %s encrypted in %.1fs (key ID %d, release %s)\n", out, len(m.Files), progress.Size(res.Size), res.Seconds, m.KeyID, releaseID)
				for _, wk := range wraps {
					where := wk.File
					if wk.Secret {
						where = filepath.Join(secretsOut, filepath.FromSlash(wk.File)) + " (secret: load it into the key authority, never publish it)"
					}
					fmt.Fprintf(w, "  %-16s %s  %s\n", wk.Type, where, wk.Recipient)
				}
				if res.OCILayout != "" {
					fmt.Fprintf(w, "OCI layout: oci-layout://%s@%s\n", res.OCILayout, res.OCIDigest)
				}
				if res.OCIRef != "" {
					fmt.Fprintf(w, "pushed:     oci://%s\n", res.OCIRef)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "new folder for the encrypted model (with -f: default <output>/model)")
	cmd.Flags().StringVarP(&configFile, "file", "f", "", "take the model, release ID, recipients and OCI target from this release config's model section")
	cmd.Flags().StringVar(&releaseID, "release-id", "", "release ID bound into every file, such as name@version")
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "who gets the data key: hpke:FILE, kms:URI, trustee:[REPO/]TYPE/TAG, azure:KEYNAME=FILE (repeatable)")
	cmd.Flags().StringVar(&keysetIn, "keyset", "", "use this cleartext Tink keyset as the data key instead of a new random one")
	cmd.Flags().BoolVar(&deterministic, "deterministic", false, "derive each file's salt and nonce prefix from the key, release and plaintext (what cvmkit release does with model.keyset): the same inputs give the same bytes; needs --keyset")
	cmd.Flags().StringVar(&keysetOut, "keyset-out", "", "also write the data key (cleartext Tink keyset, mode 0600) to this new file")
	cmd.Flags().StringVar(&secretsOut, "secrets-out", "", "new folder for secret key files (trustee recipients), outside OUT (default OUT.secrets)")
	cmd.Flags().IntVar(&workers, "workers", 0, "segments encrypted at once (default: every CPU)")
	cmd.Flags().StringVar(&ociLayout, "oci-layout", "", "also write the encrypted model as an OCI artifact into this new OCI layout folder")
	cmd.Flags().StringVar(&ociRef, "oci-ref", "", "also push it as an OCI artifact to REGISTRY/REPO[:TAG] (credentials from the Docker config)")
	cmd.Flags().BoolVar(&insecure, "insecure-registry", false, "talk plain HTTP to the registry (a local test registry)")
	return cmd
}

func (a *app) loadOrNewKey(path string) (*encrypt.DataKey, error) {
	if path == "" {
		return encrypt.NewDataKey()
	}
	release.WarnReadableSecret(a.stderr, path, "--keyset")
	b, _, err := readInput(path, "--keyset", 1<<20)
	if err != nil {
		return nil, err
	}
	k, err := encrypt.ParseKeyset(b)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("--keyset %q: %w", path, err))
	}
	return k, nil
}
