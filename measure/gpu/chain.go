package gpu

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Certificate-chain errors. ErrUntrusted: the chain does not lead to the
// pinned root (or a certificate is malformed for its role). ErrExpired: the
// chain leads there but a certificate is outside its validity at the
// verification time. ErrRevoked: an OCSP response says a certificate is
// revoked or unknown, or the response is not valid at that time.
var (
	ErrUntrusted = errors.New("untrusted certificate chain")
	ErrExpired   = errors.New("expired certificate")
	ErrRevoked   = errors.New("revocation check failed")
)

// Signer status values.
const (
	SignerValid   = "valid"
	SignerExpired = "expired"
)

// Revocation status values recorded in the output.
const (
	RevocationNotChecked = "not_checked"
	RevocationGood       = "good"
	RevocationPartial    = "partial"
)

// Chain is a verified certificate chain, leaf first, ending at the pinned
// root.
type Chain struct {
	Certs []*x509.Certificate
	// VerifiedAt is the time the chain was verified at: the requested time,
	// or the leaf's NotAfter when an expired signer was allowed.
	VerifiedAt time.Time
	// Status is SignerValid or SignerExpired (allowed by the caller).
	Status string
	// Revocation is RevocationNotChecked, RevocationGood (every certificate
	// but the root has a good OCSP response) or RevocationPartial.
	Revocation string
	// OCSP lists, per certificate below the root, what its OCSP response
	// said ("" when none was given).
	OCSP []string
	// OCSPUsed lists which of ChainOptions.OCSP answered for this chain.
	OCSPUsed []int
}

// ChainOptions says how a chain is verified.
type ChainOptions struct {
	// At is the verification time; it must be set (measure code reads no
	// clock).
	At time.Time
	// AllowExpired accepts a chain whose leaf expired before At if the
	// chain was valid at the leaf's NotAfter; the result says SignerExpired.
	AllowExpired bool
	// OCSP holds DER OCSP responses. Those for a certificate of the chain
	// (same issuer and serial, signed by the issuer or its delegated
	// responder) must say good at At; the others are ignored, and
	// Chain.OCSPUsed says which were used, so a caller checking several
	// chains can refuse a response that answered none.
	OCSP [][]byte
}

// verifyChain verifies certs (leaf first, then intermediates in any order,
// possibly with a copy of the root) up to root at opts.At.
func verifyChain(certs []*x509.Certificate, root *x509.Certificate, opts ChainOptions) (*Chain, error) {
	if opts.At.IsZero() {
		return nil, errors.New("gpu: no verification time given")
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrUntrusted)
	}
	leaf := certs[0]
	if leaf.IsCA {
		return nil, fmt.Errorf("%w: the signing certificate %q is a CA certificate", ErrUntrusted, leaf.Subject.CommonName)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("%w: the signing certificate %q may not sign (no digitalSignature key usage)", ErrUntrusted, leaf.Subject.CommonName)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		if !bytes.Equal(c.Raw, root.Raw) {
			inter.AddCert(c)
		}
	}
	verify := func(at time.Time) ([][]*x509.Certificate, error) {
		return leaf.Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
	}
	res := &Chain{VerifiedAt: opts.At.UTC(), Status: SignerValid}
	chains, err := verify(opts.At)
	if err != nil {
		var ie x509.CertificateInvalidError
		expired := errors.As(err, &ie) && ie.Reason == x509.Expired
		if !expired {
			var ua x509.UnknownAuthorityError
			if errors.As(err, &ua) {
				return nil, fmt.Errorf("%w: %q does not chain to the pinned %q (%s): %v", ErrUntrusted, leaf.Subject.CommonName, root.Subject.CommonName, Fingerprint(root)[:16], err)
			}
			return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
		}
		if opts.At.Before(leaf.NotBefore) {
			return nil, fmt.Errorf("%w: %q is valid only from %s, after the verification time %s", ErrExpired, leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339), opts.At.UTC().Format(time.RFC3339))
		}
		if !opts.AllowExpired || !opts.At.After(leaf.NotAfter) {
			return nil, fmt.Errorf("%w: at %s: %v (signer %q valid %s..%s)", ErrExpired, opts.At.UTC().Format(time.RFC3339), ie.Detail, leaf.Subject.CommonName,
				leaf.NotBefore.UTC().Format(time.DateOnly), leaf.NotAfter.UTC().Format(time.DateOnly))
		}
		// The signer expired: accept it only if the whole chain was valid
		// when the signer last was.
		chains, err = verify(leaf.NotAfter)
		if err != nil {
			return nil, fmt.Errorf("%w: the chain was not valid even at the signer's expiry %s: %v", ErrExpired, leaf.NotAfter.UTC().Format(time.RFC3339), err)
		}
		res.VerifiedAt, res.Status = leaf.NotAfter.UTC(), SignerExpired
	}
	res.Certs = chains[0]
	for _, c := range chains[1:] {
		if len(c) < len(res.Certs) {
			res.Certs = c
		}
	}
	if err := checkOCSP(res, opts); err != nil {
		return nil, err
	}
	return res, nil
}

// checkOCSP matches each given OCSP response to a certificate of the chain
// (by issuer and serial, signed by that certificate's issuer or its
// delegated responder) and requires those that match to say "good" at
// opts.At.
func checkOCSP(c *Chain, opts ChainOptions) error {
	c.OCSP = make([]string, len(c.Certs)-1)
	c.Revocation = RevocationNotChecked
	if len(opts.OCSP) == 0 {
		return nil
	}
	for n, der := range opts.OCSP {
		for i := 0; i+1 < len(c.Certs); i++ {
			resp, err := ocsp.ParseResponseForCert(der, c.Certs[i], c.Certs[i+1])
			if err != nil {
				continue
			}
			c.OCSPUsed = append(c.OCSPUsed, n)
			name := c.Certs[i].Subject.CommonName
			switch resp.Status {
			case ocsp.Good:
			case ocsp.Revoked:
				return fmt.Errorf("%w: OCSP response %d: %q was revoked at %s (reason %d)", ErrRevoked, n+1, name, resp.RevokedAt.UTC().Format(time.RFC3339), resp.RevocationReason)
			default:
				return fmt.Errorf("%w: OCSP response %d: the responder does not know %q", ErrRevoked, n+1, name)
			}
			if opts.At.Before(resp.ThisUpdate) || (!resp.NextUpdate.IsZero() && opts.At.After(resp.NextUpdate)) {
				return fmt.Errorf("%w: OCSP response %d for %q is valid %s..%s, not at %s", ErrRevoked, n+1, name,
					resp.ThisUpdate.UTC().Format(time.RFC3339), resp.NextUpdate.UTC().Format(time.RFC3339), opts.At.UTC().Format(time.RFC3339))
			}
			c.OCSP[i] = "good (produced " + resp.ProducedAt.UTC().Format(time.RFC3339) + ")"
			break
		}
	}
	if len(c.OCSPUsed) == 0 {
		return nil
	}
	c.Revocation = RevocationGood
	for _, s := range c.OCSP {
		if s == "" {
			c.Revocation = RevocationPartial
		}
	}
	return nil
}
