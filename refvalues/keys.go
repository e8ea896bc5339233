package refvalues

import "strings"

// KeyIndex is model/keys/index.json: every wrap of the model's data key.
type KeyIndex struct {
	KeyID uint32    `json:"key_id,omitempty"`
	Wraps []KeyWrap `json:"wraps"`
}

// KeyWrap is the data key wrapped for one recipient.
type KeyWrap struct {
	Type string `json:"type"` // hpke, kms, trustee, azure-key-vault
	// File is where the wrap is written: relative to the encrypted folder,
	// or for a secret, relative to the secrets folder (never published).
	File string `json:"file"`
	// Recipient says who can unwrap it (key fingerprint, KMS URI, KBS path).
	Recipient string `json:"recipient"`
	// Secret is true for a file that holds the key in the clear: it is
	// written only to the secrets folder, never into the release.
	Secret bool `json:"secret,omitempty"`
}

// TrusteeResource is the KBS resource path (REPO/TYPE/TAG) of the data
// key, when a Trustee recipient has it, else "".
func (x *KeyIndex) TrusteeResource() string {
	r := ""
	for _, w := range x.Wraps {
		if w.Type == "trustee" {
			r = strings.TrimPrefix(w.Recipient, "kbs:///")
		}
	}
	return r
}
