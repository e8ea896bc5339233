package testenv

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
)

// VaultTransit serves the two HashiCorp Vault transit endpoints sigstore's
// hashivault KMS provider calls, for the key named name: read its public
// half (GET /v1/transit/keys/NAME) and sign a prehashed SHA-256 digest
// (POST /v1/transit/sign/NAME/sha2-256). Requests must carry token.
func VaultTransit(name, token string, key *ecdsa.PrivateKey) http.Handler {
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != token {
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/transit/keys/"+name:
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
				"latest_version": 1,
				"keys":           map[string]any{"1": map[string]any{"public_key": pubPEM}},
			}})
		case (r.Method == http.MethodPost || r.Method == http.MethodPut) && r.URL.Path == "/v1/transit/sign/"+name+"/sha2-256":
			var req struct {
				Input     string `json:"input"`
				Prehashed bool   `json:"prehashed"`
			}
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Prehashed {
				http.Error(w, `{"errors":["bad request"]}`, http.StatusBadRequest)
				return
			}
			digest, _ := base64.StdEncoding.DecodeString(req.Input)
			sig, err := ecdsa.SignASN1(rand.Reader, key, digest)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"signature": "vault:v1:" + base64.StdEncoding.EncodeToString(sig)}})
		default:
			http.Error(w, `{"errors":["not found"]}`, http.StatusNotFound)
		}
	})
}
