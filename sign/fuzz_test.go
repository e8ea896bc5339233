package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
)

// FuzzVerifyBundle drives the bundle parser and the key verifier with
// arbitrary bytes: never a panic, and nothing verifies without a signature
// by the key.
func FuzzVerifyBundle(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := NewSigner(key, "fuzz")
	stmt := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}}],"predicateType":"p","predicate":{}}`)
	good, _ := SignStatement(stmt, s)
	f.Add(good)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{}},"dsseEnvelope":{"payload":"","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":""}]}}`))
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := VerifyBundle(data, &other.PublicKey); err == nil {
			t.Fatal("a bundle verified with a key that never signed anything")
		}
		_, _ = VerifyBundle(data, &key.PublicKey)
	})
}

// FuzzParseStatement: arbitrary statements never panic, and what parses has
// clean, unique subject names with sha256 digests.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"image/rootfs.img","digest":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}}],"predicateType":"p","predicate":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatement(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, s := range st.Subject {
			if !validSubjectName(s.Name) || seen[s.Name] || len(s.Digest["sha256"]) != 64 {
				t.Fatalf("accepted subject %+v", s)
			}
			seen[s.Name] = true
		}
	})
}
