package snp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
)

func genKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// leInt reads a 72-byte little-endian coordinate.
func leInt(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[i] = b[len(b)-1-i]
	}
	return new(big.Int).SetBytes(be)
}

// TestIDAuthVerifies decodes the ID auth block with the ABI layout and
// checks both signatures with the standard library's ECDSA verifier.
func TestIDAuthVerifies(t *testing.T) {
	idKey, authorKey := genKey(t), genKey(t)
	b := &IDBlock{GuestSVN: 7, Policy: 0x30000}
	for i := range b.LD {
		b.LD[i] = byte(i)
	}
	copy(b.FamilyID[:], "family-id-16byte")
	copy(b.ImageID[:], "image-id-16bytes")
	auth, err := IDAuth(b, idKey, authorKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(auth) != IDAuthSize || binary.LittleEndian.Uint32(auth[0:]) != 1 || binary.LittleEndian.Uint32(auth[4:]) != 1 {
		t.Fatalf("header: %x", auth[:8])
	}
	verify := func(name string, sig []byte, pub *ecdsa.PublicKey, msg []byte) {
		h := sha512.Sum384(msg)
		if !ecdsa.Verify(pub, h[:], leInt(sig[0:72]), leInt(sig[72:144])) {
			t.Errorf("%s does not verify", name)
		}
		if !bytes.Equal(sig[144:sigSize], make([]byte, sigSize-144)) {
			t.Errorf("%s padding not zero", name)
		}
	}
	verify("ID_BLOCK_SIG", auth[0x40:0x240], &idKey.PublicKey, b.Bytes())
	verify("ID_KEY_SIG", auth[0x680:0x880], &authorKey.PublicKey, auth[0x240:0x644])
	// The encoded public keys decode back to the keys.
	for name, c := range map[string]struct {
		off int
		k   *ecdsa.PublicKey
	}{"ID_KEY": {0x240, &idKey.PublicKey}, "AUTHOR_KEY": {0x880, &authorKey.PublicKey}} {
		pk := auth[c.off : c.off+pubKeySize]
		pt, _ := c.k.Bytes() // 0x04 ‖ X ‖ Y, big-endian
		x, y := new(big.Int).SetBytes(pt[1:49]), new(big.Int).SetBytes(pt[49:])
		if binary.LittleEndian.Uint32(pk) != 2 || leInt(pk[4:76]).Cmp(x) != 0 || leInt(pk[0x4c:0x4c+72]).Cmp(y) != 0 {
			t.Errorf("%s does not encode the key", name)
		}
	}
	if !bytes.Equal(auth[0xc84:], make([]byte, IDAuthSize-0xc84)) {
		t.Error("reserved tail not zero")
	}
	again, _ := IDAuth(b, idKey, authorKey)
	if !bytes.Equal(auth, again) {
		t.Error("ID auth is not deterministic")
	}
	noAuthor, err := IDAuth(b, idKey, nil)
	if err != nil || binary.LittleEndian.Uint32(noAuthor[4:]) != 0 || !bytes.Equal(noAuthor[0x680:], make([]byte, IDAuthSize-0x680)) {
		t.Errorf("without an author key the author fields must be zero (err %v)", err)
	}
}

func TestIDBlockLayout(t *testing.T) {
	b := &IDBlock{GuestSVN: 0x11223344, Policy: 0x30000}
	b.LD[0], b.FamilyID[0], b.ImageID[15] = 0xaa, 0xbb, 0xcc
	got := b.Bytes()
	if len(got) != IDBlockSize || got[0] != 0xaa || got[0x30] != 0xbb || got[0x4f] != 0xcc ||
		binary.LittleEndian.Uint32(got[0x50:]) != 1 || binary.LittleEndian.Uint32(got[0x54:]) != 0x11223344 ||
		binary.LittleEndian.Uint64(got[0x58:]) != 0x30000 {
		t.Errorf("layout: %x", got)
	}
}

func TestCheckPolicy(t *testing.T) {
	for p, want := range map[uint64]string{0x30000: "", 0x10000: "bit 17", 0x30000 | 1<<26: "63:26", 0x3f0000: ""} {
		err := CheckPolicy(p)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPolicy(%#x) = %v, want %q", p, err, want)
		}
	}
}

func TestParseP384PrivateKey(t *testing.T) {
	k := genKey(t)
	sec1, _ := x509.MarshalECPrivateKey(k)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	for _, blk := range []*pem.Block{{Type: "EC PRIVATE KEY", Bytes: sec1}, {Type: "PRIVATE KEY", Bytes: pkcs8}} {
		got, err := ParseP384PrivateKey(pem.EncodeToMemory(blk))
		if err != nil || !got.Equal(k) {
			t.Errorf("%s: %v", blk.Type, err)
		}
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(p256)
	for name, in := range map[string][]byte{
		"P-256":   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		"not PEM": []byte("hello"),
		"public":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}),
	} {
		if _, err := ParseP384PrivateKey(in); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
