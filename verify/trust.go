package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/internal/helper"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/sign"
)

// TrustOptions say whom a release's signatures must come from: a public key
// (a file, or a KMS key URI whose public key cvmkit-sigstore fetches), or a
// keyless identity (Fulcio certificate and Rekor entry, checked by
// cvmkit-sigstore against a Sigstore trusted root).
type TrustOptions struct {
	Key                                            string
	Identity, IdentityRegexp, Issuer, IssuerRegexp string
	TrustedRoot                                    string
	// Getenv finds the helper (CVMKIT_SIGSTORE); HelperEnv is added to its
	// environment.
	Getenv    func(string) (string, bool)
	HelperEnv []string
}

// Trust returns the bundle check for the options (the bundle's statement
// when it verifies) and a line saying who is trusted.
func Trust(ctx context.Context, o TrustOptions) (func([]byte) ([]byte, error), string, error) {
	key, identity, identityRegexp, issuer, issuerRegexp, trustedRoot := o.Key, o.Identity, o.IdentityRegexp, o.Issuer, o.IssuerRegexp, o.TrustedRoot
	keyless := identity != "" || identityRegexp != "" || issuer != "" || issuerRegexp != ""
	switch {
	case key != "" && keyless:
		return nil, "", outcome.UsageError(errors.New("give --key or a certificate identity, not both"))
	case key != "":
		var b []byte
		var err error
		if strings.Contains(key, "://") {
			// A KMS key URI: its public key, fetched by the helper.
			path, herr := helper.Find("cvmkit-sigstore", "CVMKIT_SIGSTORE", o.Getenv)
			if herr != nil {
				return nil, "", herr
			}
			b, err = helper.Run(ctx, path, o.HelperEnv, "public-key", "--key", key)
		} else {
			b, _, err = fileio.Read(key, "--key", 1<<20)
		}
		if err != nil {
			return nil, "", err
		}
		pub, err := sign.LoadPublicKey(b)
		if err != nil {
			return nil, "", outcome.InputError(fmt.Errorf("--key %q: %w", key, err), "give the public key (cosign.pub), not the private key")
		}
		hint, _ := sign.KeyHint(pub)
		return func(b []byte) ([]byte, error) { return sign.VerifyBundle(b, pub) }, "signed by the key " + key + " (hint " + hint + ")", nil
	case keyless:
		if trustedRoot == "" {
			return nil, "", outcome.UsageError(errors.New("keyless verification needs --trusted-root"), "get Sigstore's trusted_root.json from its TUF repository (cosign trusted-root, or https://github.com/sigstore/root-signing)")
		}
		if (identity == "") == (identityRegexp == "") || (issuer == "") == (issuerRegexp == "") {
			return nil, "", outcome.UsageError(errors.New("give one of --certificate-identity(-regexp) and one of --certificate-oidc-issuer(-regexp)"))
		}
		path, err := helper.Find("cvmkit-sigstore", "CVMKIT_SIGSTORE", o.Getenv)
		if err != nil {
			return nil, "", err
		}
		args := []string{"verify", "--trusted-root", trustedRoot}
		for flag, v := range map[string]string{"--certificate-identity": identity, "--certificate-identity-regexp": identityRegexp, "--certificate-oidc-issuer": issuer, "--certificate-oidc-issuer-regexp": issuerRegexp} {
			if v != "" {
				args = append(args, flag, v)
			}
		}
		check := func(b []byte) ([]byte, error) {
			tmp, err := os.CreateTemp("", "cvmkit-bundle-*.json")
			if err != nil {
				return nil, err
			}
			defer os.Remove(tmp.Name())
			if _, err := tmp.Write(b); err != nil {
				tmp.Close()
				return nil, err
			}
			tmp.Close()
			return helper.Run(ctx, path, o.HelperEnv, append(args, tmp.Name())...)
		}
		return check, "keyless: Fulcio certificate for " + cmp.Or(identity, identityRegexp) + " from " + cmp.Or(issuer, issuerRegexp) + ", Rekor entry", nil
	}
	return nil, "", outcome.UsageError(errors.New("say whom to trust: --key cosign.pub, or --certificate-identity and --certificate-oidc-issuer"),
		"a release is verified against its signer: the public key the release was signed with (cosign.pub from 'cvmkit keygen --signing', or a KMS key URI), or for a keyless release the workflow identity and OIDC issuer, with Sigstore's trusted root")
}
