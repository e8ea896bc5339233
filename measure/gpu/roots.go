package gpu

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"

	"crypto/x509"
)

// The two NVIDIA trust anchors, embedded by value and pinned by SHA-256
// fingerprint of their DER encoding. They are the same roots NVIDIA's own
// verifiers pin (nvtrust's verifier_RIM_root.pem and device root, the
// attestation SDK's certs.h). A copy of a root inside a RIM's KeyInfo or a
// device certificate chain is never trusted: only these are.
var (
	//go:embed roots/nvidia-corim-signing-root-ca.pem
	rimRootPEM []byte
	//go:embed roots/nvidia-device-identity-ca.pem
	deviceRootPEM []byte
)

// Pinned fingerprints (SHA-256 of the DER certificate).
const (
	// RIMRootSHA256 is "NVIDIA CoRIM signing Root CA" (2023-03-16..2053-03-08),
	// which signs the Reference Integrity Manifest hierarchy.
	RIMRootSHA256 = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"
	// DeviceRootSHA256 is "NVIDIA Device Identity CA" (2021-11-05..9999), the
	// root of every GPU's attestation-key certificate chain.
	DeviceRootSHA256 = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
)

var pinnedRoots = sync.OnceValues(func() ([2]*x509.Certificate, error) {
	var out [2]*x509.Certificate
	for i, r := range []struct {
		pem []byte
		fp  string
	}{{rimRootPEM, RIMRootSHA256}, {deviceRootPEM, DeviceRootSHA256}} {
		blk, _ := pem.Decode(r.pem)
		if blk == nil {
			return out, errors.New("embedded NVIDIA root is not PEM")
		}
		if got := sha256.Sum256(blk.Bytes); hex.EncodeToString(got[:]) != r.fp {
			return out, fmt.Errorf("embedded NVIDIA root has fingerprint %x, pinned %s", got, r.fp)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return out, err
		}
		out[i] = c
	}
	return out, nil
})

// RIMRoot returns the pinned NVIDIA CoRIM signing root.
func RIMRoot() (*x509.Certificate, error) {
	r, err := pinnedRoots()
	return r[0], err
}

// DeviceRoot returns the pinned NVIDIA Device Identity CA.
func DeviceRoot() (*x509.Certificate, error) {
	r, err := pinnedRoots()
	return r[1], err
}

// Fingerprint returns the lowercase hex SHA-256 of a certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}
