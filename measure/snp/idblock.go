package snp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// IDBlock is the ID block a host passes to SNP_LAUNCH_FINISH (SEV-SNP ABI
// spec rev 1.55, table 74 "ID_BLOCK Structure"). The secure processor
// refuses to launch unless LD equals the launch digest and Policy the guest
// policy; FamilyID, ImageID and GuestSVN then appear in every attestation
// report, and the ID key's digest too.
type IDBlock struct {
	LD       [DigestSize]byte
	FamilyID [16]byte
	ImageID  [16]byte
	GuestSVN uint32
	Policy   uint64
}

// IDBlockSize and IDAuthSize are the sizes QEMU's sev-snp-guest object
// expects for id-block and id-auth (before base64).
const (
	IDBlockSize = 0x60
	IDAuthSize  = 0x1000
)

// Bytes encodes the block: LD[48], FAMILY_ID[16], IMAGE_ID[16],
// u32 VERSION = 1, u32 GUEST_SVN, u64 POLICY.
func (b *IDBlock) Bytes() []byte {
	out := make([]byte, IDBlockSize)
	copy(out[0x00:], b.LD[:])
	copy(out[0x30:], b.FamilyID[:])
	copy(out[0x40:], b.ImageID[:])
	binary.LittleEndian.PutUint32(out[0x50:], 1)
	binary.LittleEndian.PutUint32(out[0x54:], b.GuestSVN)
	binary.LittleEndian.PutUint64(out[0x58:], b.Policy)
	return out
}

// CheckPolicy rejects a guest policy the secure processor would refuse
// (SEV-SNP ABI spec table 9 "Guest Policy Structure"): bit 17 is reserved
// and must be 1; bits 63:26 are reserved and must be 0.
func CheckPolicy(p uint64) error {
	if p&(1<<17) == 0 {
		return fmt.Errorf("guest policy %#x: bit 17 is reserved and must be set (QEMU's default is 0x30000)", p)
	}
	if p>>26 != 0 {
		return fmt.Errorf("guest policy %#x: bits 63:26 are reserved and must be 0", p)
	}
	return nil
}

// Sizes of the ABI's ECDSA P-384 public key and signature encodings
// (tables 120 and 121): little-endian coordinates zero-padded to 72 bytes.
const (
	pubKeySize = 0x404
	sigSize    = 0x200
	coordSize  = 72
)

// ParseP384PrivateKey reads a PEM P-384 private key (SEC 1 "EC PRIVATE
// KEY" or PKCS #8 "PRIVATE KEY"), the form sev-snp-measure and openssl
// ecparam -name secp384r1 -genkey write.
func ParseP384PrivateKey(data []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch blk.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P384() {
		return nil, errors.New("not an ECDSA P-384 key (make one with: openssl ecparam -name secp384r1 -genkey -noout)")
	}
	return k, nil
}

// PublicKeyBytes encodes a P-384 public key as the ABI does: u32 CURVE = 2
// (P-384), QX[72], QY[72] little-endian, zeros up to 0x404 bytes.
func PublicKeyBytes(k *ecdsa.PublicKey) ([]byte, error) {
	if k.Curve != elliptic.P384() {
		return nil, errors.New("ID and author keys must be ECDSA P-384")
	}
	raw, err := k.ECDH() // validates the point
	if err != nil {
		return nil, err
	}
	pt := raw.Bytes() // 0x04 ‖ X[48] ‖ Y[48], big-endian
	out := make([]byte, pubKeySize)
	binary.LittleEndian.PutUint32(out, 2)
	putLE(out[0x04:0x04+coordSize], pt[1:49])
	putLE(out[0x4c:0x4c+coordSize], pt[49:97])
	return out, nil
}

// KeyDigest is SHA-384 of the encoded public key: the ID_KEY_DIGEST and
// AUTHOR_KEY_DIGEST fields of an attestation report.
func KeyDigest(k *ecdsa.PublicKey) ([DigestSize]byte, error) {
	b, err := PublicKeyBytes(k)
	if err != nil {
		return [DigestSize]byte{}, err
	}
	return sha512.Sum384(b), nil
}

// putLE writes the big-endian bytes be into dst little-endian.
func putLE(dst, be []byte) {
	for i := range be {
		dst[i] = be[len(be)-1-i]
	}
}

// sign signs SHA-384(msg) with k deterministically (RFC 6979), so that the
// same block and key always give the same ID auth block, and encodes the
// signature as R[72] ‖ S[72] little-endian, zero-padded to 0x200.
func sign(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha512.Sum384(msg)
	der, err := k.Sign(nil, h[:], crypto.SHA384) // nil rand: RFC 6979
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	out := make([]byte, sigSize)
	putLE(out[0:coordSize], sig.R.FillBytes(make([]byte, 48)))
	putLE(out[coordSize:2*coordSize], sig.S.FillBytes(make([]byte, 48)))
	return out, nil
}

// IDAuth builds the ID authentication information structure (SEV-SNP ABI
// spec rev 1.55, table 75): the ID block signed by the ID key, the ID key,
// and, with an author key, the ID key signed by the author key and the
// author key. authorKey may be nil.
//
//	0x000 u32 ID_KEY_ALGO = 1 (ECDSA P-384 with SHA-384)
//	0x004 u32 AUTH_KEY_ALGO = 1 with an author key, else 0
//	0x040 ID_BLOCK_SIG[0x200]   0x240 ID_KEY[0x404]
//	0x680 ID_KEY_SIG[0x200]     0x880 AUTHOR_KEY[0x404]
func IDAuth(block *IDBlock, idKey, authorKey *ecdsa.PrivateKey) ([]byte, error) {
	out := make([]byte, IDAuthSize)
	binary.LittleEndian.PutUint32(out[0x000:], 1)
	blockSig, err := sign(idKey, block.Bytes())
	if err != nil {
		return nil, fmt.Errorf("signing the ID block: %w", err)
	}
	copy(out[0x040:], blockSig)
	idPub, err := PublicKeyBytes(&idKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ID key: %w", err)
	}
	copy(out[0x240:], idPub)
	if authorKey != nil {
		binary.LittleEndian.PutUint32(out[0x004:], 1)
		keySig, err := sign(authorKey, idPub)
		if err != nil {
			return nil, fmt.Errorf("signing the ID key: %w", err)
		}
		copy(out[0x680:], keySig)
		authPub, err := PublicKeyBytes(&authorKey.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("author key: %w", err)
		}
		copy(out[0x880:], authPub)
	}
	return out, nil
}
