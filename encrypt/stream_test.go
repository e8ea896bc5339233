package encrypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"

	gcmhkdfpb "github.com/tink-crypto/tink-go/v2/proto/aes_gcm_hkdf_streaming_go_proto"
	commonpb "github.com/tink-crypto/tink-go/v2/proto/common_go_proto"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"google.golang.org/protobuf/proto"
)

// sizes straddle every segment boundary of the format.
var sizes = []int{0, 1, 100, firstPlainSize - 1, firstPlainSize, firstPlainSize + 1,
	firstPlainSize + plainSize - 1, firstPlainSize + plainSize, firstPlainSize + plainSize + 1, 3*SegmentSize + 12345}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestTinkDecryptsCvmkit: tink-go's own streaming AEAD reads what cvmkit's
// parallel engine wrote.
func TestTinkDecryptsCvmkit(t *testing.T) {
	key, err := NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	tinkAEAD, err := streamingaead.New(key.Handle)
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("cvmkit test\x00release\x00model.safetensors")
	for _, n := range sizes {
		pt := randomBytes(n)
		var ct bytes.Buffer
		st, err := Encrypt(context.Background(), &ct, bytes.NewReader(pt), key.ikm, ad, Options{Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		if st.PlainSize != int64(n) || st.CipherSize != int64(ct.Len()) || CiphertextSize(int64(n)) != int64(ct.Len()) ||
			st.PlainSHA256 != sha256.Sum256(pt) || st.CipherSHA256 != sha256.Sum256(ct.Bytes()) {
			t.Fatalf("size %d: stats %+v, ciphertext %d bytes", n, st, ct.Len())
		}
		r, err := tinkAEAD.NewDecryptingReader(bytes.NewReader(ct.Bytes()), ad)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("size %d: tink-go could not decrypt cvmkit's ciphertext: %v", n, err)
		}
	}
}

// TestCvmkitDecryptsTink: cvmkit's random-access and parallel readers read
// what tink-go's streaming AEAD wrote.
func TestCvmkitDecryptsTink(t *testing.T) {
	key, _ := NewDataKey()
	tinkAEAD, _ := streamingaead.New(key.Handle)
	ad := []byte("associated data")
	for _, n := range sizes {
		pt := randomBytes(n)
		var ct bytes.Buffer
		w, err := tinkAEAD.NewEncryptingWriter(&ct, ad)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(pt)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(ct.Bytes()), int64(ct.Len()), key.ikm, ad)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if r.Size() != int64(n) {
			t.Fatalf("size %d: Reader.Size %d", n, r.Size())
		}
		var out bytes.Buffer
		st, err := r.DecryptTo(context.Background(), &out, Options{Workers: 4})
		if err != nil || !bytes.Equal(out.Bytes(), pt) || st.PlainSHA256 != sha256.Sum256(pt) {
			t.Fatalf("size %d: parallel decrypt: %v", n, err)
		}
		// Random access: arbitrary windows, including across segment edges.
		for i := 0; i < 20 && n > 0; i++ {
			off := mrand.IntN(n)
			l := mrand.IntN(min(n-off, 3*SegmentSize) + 1)
			buf := make([]byte, l)
			m, err := r.ReadAt(buf, int64(off))
			if (err != nil && err != io.EOF) || m != l || !bytes.Equal(buf, pt[off:off+l]) {
				t.Fatalf("size %d: ReadAt(%d, %d) = %d, %v", n, off, l, m, err)
			}
		}
		if _, err := r.ReadAt(make([]byte, 1), int64(n)); err != io.EOF {
			t.Fatalf("ReadAt at the end: %v", err)
		}
	}
}

func TestSizes(t *testing.T) {
	for _, n := range append(sizes, 5*SegmentSize) {
		ct := CiphertextSize(int64(n))
		got, err := PlaintextSize(ct)
		if err != nil || got != int64(n) {
			t.Errorf("PlaintextSize(CiphertextSize(%d)=%d) = %d, %v", n, ct, got, err)
		}
	}
	for _, bad := range []int64{0, HeaderSize + tagSize - 1, SegmentSize + 1, 2*SegmentSize + tagSize - 1} {
		if _, err := PlaintextSize(bad); !errors.Is(err, ErrAuth) {
			t.Errorf("PlaintextSize(%d) accepted", bad)
		}
	}
}

// fixedKeyset is a Tink keyset holding one AES256_GCM_HKDF_1MB key with key
// value 32 × 0x01 and key ID 42, built from Tink's protos.
func fixedKeyset(t *testing.T) *DataKey {
	t.Helper()
	sk, _ := proto.Marshal(&gcmhkdfpb.AesGcmHkdfStreamingKey{
		Params:   &gcmhkdfpb.AesGcmHkdfStreamingParams{CiphertextSegmentSize: SegmentSize, DerivedKeySize: 32, HkdfHashType: commonpb.HashType_SHA256},
		KeyValue: bytes.Repeat([]byte{0x01}, 32),
	})
	ks, _ := proto.Marshal(&tinkpb.Keyset{PrimaryKeyId: 42, Key: []*tinkpb.Keyset_Key{{
		KeyData:          &tinkpb.KeyData{TypeUrl: streamingKeyTypeURL, Value: sk, KeyMaterialType: tinkpb.KeyData_SYMMETRIC},
		Status:           tinkpb.KeyStatusType_ENABLED,
		KeyId:            42,
		OutputPrefixType: tinkpb.OutputPrefixType_RAW,
	}}})
	k, err := ParseKeyset(ks)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The test vector of docs/weights-format.md: key value 32 × 0x01, salt
// 32 × 0x02, nonce prefix 7 × 0x03, associated data "ad", plaintext
// "hello, weights".
const vectorCiphertext = "28020202020202020202020202020202020202020202020202020202020202020203030303030303c26cf5b47b06d4c4bc82f19a8957ac39994b13bac5bd258328387a3d76e3"

// TestFixedVector pins the format: fixed key, salt and nonce prefix give
// exactly these bytes, and tink-go decrypts them.
func TestFixedVector(t *testing.T) {
	key := fixedKeyset(t)
	rnd := bytes.NewReader(append(bytes.Repeat([]byte{0x02}, 32), bytes.Repeat([]byte{0x03}, 7)...))
	var ct bytes.Buffer
	if _, err := Encrypt(context.Background(), &ct, bytes.NewReader([]byte("hello, weights")), key.ikm, []byte("ad"), Options{Rand: rnd}); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(ct.Bytes()); got != vectorCiphertext {
		t.Errorf("ciphertext\n%s\nwant\n%s", got, vectorCiphertext)
	}
	a, err := streamingaead.New(key.Handle)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.NewDecryptingReader(bytes.NewReader(ct.Bytes()), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := io.ReadAll(r); err != nil || string(pt) != "hello, weights" {
		t.Fatalf("tink-go: %q, %v", pt, err)
	}
	if key.KeyID != 42 {
		t.Errorf("key ID %d", key.KeyID)
	}
}
