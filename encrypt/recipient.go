package encrypt

import (
	"context"
	"fmt"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/testing/fakekms"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Recipient is who the data key is wrapped for: an HPKE public key, a KMS
// key, a Trustee KBS resource (the cleartext keyset, a secret) or an Azure
// Key Vault import.
type Recipient struct {
	Kind string // hpke, kms, trustee, azure
	// File is the HPKE or Azure public key file; URI the KMS key.
	File, URI string
	// Repository/Type/Tag is the KBS resource path (trustee).
	Repository, Type, Tag string
	// KeyName is the Azure Key Vault key to create.
	KeyName string
	// Source says how the user gave it ("--recipient hpke:k.pub",
	// "model.recipients[1]"), for errors.
	Source string
}

// ParseRecipient reads the KIND:VALUE form of --recipient: hpke:FILE,
// kms:URI, trustee:[REPO/]TYPE/TAG or azure:KEYNAME=FILE.
func ParseRecipient(spec string) (Recipient, error) {
	kind, val, ok := strings.Cut(spec, ":")
	r := Recipient{Kind: kind, Source: "--recipient " + spec}
	if !ok || val == "" {
		return r, outcome.UsageError(fmt.Errorf("--recipient %q: want KIND:VALUE", spec), "kinds: hpke:FILE, kms:URI, trustee:[REPO/]TYPE/TAG, azure:KEYNAME=FILE")
	}
	switch kind {
	case "hpke":
		r.File = val
	case "kms":
		r.URI = val
	case "trustee":
		parts := strings.Split(val, "/")
		if len(parts) == 2 {
			parts = append([]string{"default"}, parts...)
		}
		if len(parts) != 3 {
			return r, outcome.UsageError(fmt.Errorf("--recipient %s: want trustee:[REPO/]TYPE/TAG", spec))
		}
		r.Repository, r.Type, r.Tag = parts[0], parts[1], parts[2]
	case "azure":
		name, file, ok := strings.Cut(val, "=")
		if !ok || name == "" {
			return r, outcome.UsageError(fmt.Errorf("--recipient %s: want azure:KEYNAME=FILE", spec))
		}
		r.KeyName, r.File = name, file
	default:
		return r, outcome.UsageError(fmt.Errorf("--recipient %q: unknown kind %q", spec, kind), "kinds: hpke, kms, trustee, azure")
	}
	return r, nil
}

// Recipients are the release config's model.recipients, paths resolved
// against the config's folder.
func Recipients(c *config.Config) []Recipient {
	var out []Recipient
	if c.Release.Model == nil {
		return nil
	}
	for i, r := range c.Release.Model.Recipients {
		src := fmt.Sprintf("model.recipients[%d]", i)
		switch {
		case r.HPKE != "":
			out = append(out, Recipient{Kind: "hpke", File: c.Resolve(r.HPKE), Source: src})
		case r.KMS != "":
			out = append(out, Recipient{Kind: "kms", URI: r.KMS, Source: src})
		case r.Trustee != nil:
			repo := r.Trustee.Repository
			if repo == "" {
				repo = "default"
			}
			out = append(out, Recipient{Kind: "trustee", Repository: repo, Type: r.Trustee.Type, Tag: r.Trustee.Tag, Source: src})
		case r.Azure != nil:
			out = append(out, Recipient{Kind: "azure", KeyName: r.Azure.KeyName, File: c.Resolve(r.Azure.PublicKey), Source: src})
		}
	}
	return out
}

// Wrap wraps the data key for r (the n-th recipient); getenv supplies
// VAULT_TOKEN for an hcvault:// KMS key.
func Wrap(ctx context.Context, r Recipient, key *DataKey, releaseID string, n int, getenv func(string) (string, bool)) (*WrappedKey, error) {
	bad := func(err error) error { return outcome.InputError(fmt.Errorf("%s: %w", r.Source, err)) }
	var w *WrappedKey
	var err error
	switch r.Kind {
	case "hpke":
		b, _, rerr := fileio.Read(r.File, r.Source, 1<<20)
		if rerr != nil {
			return nil, rerr
		}
		w, err = WrapHPKE(b, key, releaseID)
	case "kms":
		kek, kerr := KMSAEAD(ctx, r.URI, getenv)
		if kerr != nil {
			return nil, kerr
		}
		w, err = WrapKMS(kek, r.URI, key, releaseID, n)
	case "trustee":
		w, err = TrusteeResource(key, r.Repository, r.Type, r.Tag)
	case "azure":
		b, _, rerr := fileio.Read(r.File, r.Source, 1<<20)
		if rerr != nil {
			return nil, rerr
		}
		w, err = WrapAzure(b, r.KeyName, key)
	default:
		return nil, outcome.UsageError(fmt.Errorf("%s: unknown kind %q", r.Source, r.Kind), "kinds: hpke, kms, trustee, azure")
	}
	if err != nil {
		return nil, bad(err)
	}
	return w, nil
}

// KMSAEAD resolves a key URI with Tink's KMS clients: hcvault://
// (HashiCorp Vault transit, VAULT_TOKEN from getenv) and fake-kms://
// (Tink's test KMS, whose key is in the URI). Tink's Google Cloud and AWS
// KMS clients are not linked: their SDKs' package initialisation adds ~8 ms
// to every cvmkit process, which the measurement commands cannot afford
// (docs/weights-format.md).
func KMSAEAD(ctx context.Context, uri string, getenv func(string) (string, bool)) (tink.AEAD, error) {
	var c registry.KMSClient
	var err error
	switch {
	case strings.HasPrefix(uri, "fake-kms://"):
		c, err = fakekms.NewClient("fake-kms://")
	case strings.HasPrefix(uri, "hcvault://"):
		token, ok := getenv("VAULT_TOKEN")
		if !ok || token == "" {
			return nil, outcome.UsageError(fmt.Errorf("kms %s: VAULT_TOKEN is not set", uri), "export VAULT_TOKEN with a token that may use the transit key")
		}
		c, err = hcvault.NewClient("hcvault://", nil, token)
	default:
		return nil, outcome.UsageError(fmt.Errorf("no KMS client for %q in cvmkit", uri), "cvmkit has hcvault:// and fake-kms://; for Google Cloud or AWS KMS, wrap the Trustee resource keyset with gcloud/aws kms encrypt, or use an hpke recipient")
	}
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("KMS client for %s: %w", RedactKMS(uri), err), "check the KMS credentials (GOOGLE_APPLICATION_CREDENTIALS, AWS_PROFILE …)")
	}
	kek, err := c.GetAEAD(uri)
	if err != nil {
		return nil, outcome.InputError(fmt.Errorf("KMS key %s: %w", RedactKMS(uri), err))
	}
	return kek, nil
}

// RedactKMS keeps a fake-kms:// key out of messages.
func RedactKMS(uri string) string {
	if strings.HasPrefix(uri, "fake-kms://") {
		return "fake-kms://…"
	}
	return uri
}
