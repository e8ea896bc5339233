package encrypt

import (
	"bytes"
	"context"
	"io"
	mrand "math/rand/v2"
	"testing"
)

// BenchmarkEncryptEngine: the parallel sealer alone (plaintext in memory,
// ciphertext discarded), including both SHA-256 digests of the manifest.
func BenchmarkEncryptEngine(b *testing.B) {
	pt := randomBytes(64 << 20)
	key, _ := NewDataKey()
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := Encrypt(context.Background(), io.Discard, bytes.NewReader(pt), key.ikm, []byte("ad"), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptEngine: the parallel opener over a ciphertext in memory.
func BenchmarkDecryptEngine(b *testing.B) {
	pt := randomBytes(64 << 20)
	key, _ := NewDataKey()
	var ct bytes.Buffer
	Encrypt(context.Background(), &ct, bytes.NewReader(pt), key.ikm, []byte("ad"), Options{})
	r, err := NewReader(bytes.NewReader(ct.Bytes()), int64(ct.Len()), key.ikm, []byte("ad"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := r.DecryptTo(context.Background(), io.Discard, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAtSegment: one random 1 MiB segment read through ReadAt
// (target: under 1 ms).
func BenchmarkReadAtSegment(b *testing.B) {
	pt := randomBytes(256 << 20)
	key, _ := NewDataKey()
	var ct bytes.Buffer
	Encrypt(context.Background(), &ct, bytes.NewReader(pt), key.ikm, []byte("ad"), Options{})
	r, _ := NewReader(bytes.NewReader(ct.Bytes()), int64(ct.Len()), key.ikm, []byte("ad"))
	buf := make([]byte, plainSize)
	b.SetBytes(plainSize)
	for b.Loop() {
		seg := 1 + mrand.Int64N(r.Segments()-2)
		if _, err := r.ReadAt(buf, plainOffset(seg)); err != nil {
			b.Fatal(err)
		}
	}
}
