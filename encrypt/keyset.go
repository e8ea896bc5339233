package encrypt

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	gcmhkdfpb "github.com/tink-crypto/tink-go/v2/proto/aes_gcm_hkdf_streaming_go_proto"
	commonpb "github.com/tink-crypto/tink-go/v2/proto/common_go_proto"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"google.golang.org/protobuf/proto"
)

// streamingKeyTypeURL is Tink's type URL of an AES-GCM-HKDF streaming key.
const streamingKeyTypeURL = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"

// DataKey is a release's data key: a Tink keyset with one
// AES256_GCM_HKDF_1MB streaming AEAD key. Any Tink implementation loads
// the keyset and decrypts the weights; cvmkit uses the key material
// directly for its parallel and random-access engine.
type DataKey struct {
	Handle *keyset.Handle
	// KeyID is the keyset's primary key ID.
	KeyID uint32
	ikm   []byte
}

// NewDataKey generates a fresh random data key with Tink.
func NewDataKey() (*DataKey, error) {
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		return nil, err
	}
	return fromHandle(h)
}

// ParseKeyset reads a cleartext Tink keyset, in binary or JSON form, and
// checks that its primary key is an AES256_GCM_HKDF_1MB streaming key.
func ParseKeyset(b []byte) (*DataKey, error) {
	var h *keyset.Handle
	var err error
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		h, err = insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	} else {
		h, err = insecurecleartextkeyset.Read(keyset.NewBinaryReader(bytes.NewReader(b)))
	}
	if err != nil {
		return nil, fmt.Errorf("not a cleartext Tink keyset: %w", err)
	}
	return fromHandle(h)
}

func fromHandle(h *keyset.Handle) (*DataKey, error) {
	ks := insecurecleartextkeyset.KeysetMaterial(h)
	for _, k := range ks.GetKey() {
		if k.GetKeyId() != ks.GetPrimaryKeyId() {
			continue
		}
		if k.GetKeyData().GetTypeUrl() != streamingKeyTypeURL {
			return nil, fmt.Errorf("the keyset's primary key is %s, not an AES-GCM-HKDF streaming key", k.GetKeyData().GetTypeUrl())
		}
		if k.GetStatus() != tinkpb.KeyStatusType_ENABLED {
			return nil, errors.New("the keyset's primary key is not enabled")
		}
		var sk gcmhkdfpb.AesGcmHkdfStreamingKey
		if err := proto.Unmarshal(k.GetKeyData().GetValue(), &sk); err != nil {
			return nil, err
		}
		p := sk.GetParams()
		if p.GetCiphertextSegmentSize() != SegmentSize || p.GetDerivedKeySize() != keySize || p.GetHkdfHashType() != commonpb.HashType_SHA256 || len(sk.GetKeyValue()) != keySize {
			return nil, fmt.Errorf("the keyset's key has parameters (segment %d, derived key %d, %s) other than AES256_GCM_HKDF_1MB's", p.GetCiphertextSegmentSize(), p.GetDerivedKeySize(), p.GetHkdfHashType())
		}
		return &DataKey{Handle: h, KeyID: k.GetKeyId(), ikm: sk.GetKeyValue()}, nil
	}
	return nil, errors.New("the keyset has no primary key")
}

// Cleartext returns the keyset in Tink's binary and JSON cleartext forms.
// These are the secret: handle them like the key itself.
func (k *DataKey) Cleartext() (binary, json []byte, err error) {
	var b, j bytes.Buffer
	if err := insecurecleartextkeyset.Write(k.Handle, keyset.NewBinaryWriter(&b)); err != nil {
		return nil, nil, err
	}
	if err := insecurecleartextkeyset.Write(k.Handle, keyset.NewJSONWriter(&j)); err != nil {
		return nil, nil, err
	}
	// protojson varies its spacing from one build to the next on purpose;
	// compacted, the same key gives the same bytes from every cvmkit.
	var c bytes.Buffer
	if err := stdjson.Compact(&c, j.Bytes()); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), c.Bytes(), nil
}
