// Package kms signs release statements with a key held in a key management
// service, through sigstore's KMS providers: AWS KMS (awskms://…), Google
// Cloud KMS (gcpkms://…), Azure Key Vault (azurekms://…) and HashiCorp
// Vault transit (hashivault://…), configured as cosign configures them
// (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*, VAULT_ADDR/VAULT_TOKEN).
// The providers link the clouds' SDKs, so only the cvmkit-sigstore helper
// uses this package. KMS signatures are not deterministic.
package kms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"

	"github.com/cvmkit/cvmkit/sign"
	sigkms "github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"

	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)

// Sign signs a statement with the KMS key keyURI and returns its bundle.
// The key must be ECDSA P-256 or P-384.
func Sign(ctx context.Context, statement []byte, keyURI string) ([]byte, error) {
	sv, err := sigkms.Get(ctx, keyURI, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: KMS key %q: %v", sign.ErrKey, keyURI, err)
	}
	pub, err := sv.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("KMS key %q: public key: %w", keyURI, err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: KMS key %q is %T; cvmkit signs with ECDSA P-256 or P-384 keys", sign.ErrKey, keyURI, pub)
	}
	if ec.Curve == elliptic.P384() {
		if sv, err = sigkms.Get(ctx, keyURI, crypto.SHA384); err != nil {
			return nil, fmt.Errorf("%w: KMS key %q: %v", sign.ErrKey, keyURI, err)
		}
	}
	sig, err := sv.SignMessage(bytes.NewReader(sign.PAE(sign.PayloadType, statement)), options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("KMS key %q: signing: %w", keyURI, err)
	}
	return sign.KeyBundle(statement, sig, pub)
}

// PublicKey returns a KMS key's public key (for cvmkit verify --key).
func PublicKey(ctx context.Context, keyURI string) (crypto.PublicKey, error) {
	sv, err := sigkms.Get(ctx, keyURI, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: KMS key %q: %v", sign.ErrKey, keyURI, err)
	}
	return sv.PublicKey(options.WithContext(ctx))
}
