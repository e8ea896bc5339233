package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/cvmkit/cvmkit/refvalues"
)

// The image lock's types live in package refvalues with the release's
// other documents; these are their names here.
const LockSchema = refvalues.LockSchema

type (
	Lock         = refvalues.Lock
	LockSettings = refvalues.LockSettings
	LockLimits   = refvalues.LockLimits
	LockInput    = refvalues.LockInput
	LockVerity   = refvalues.LockVerity
	LockFile     = refvalues.LockFile
)

// ReadLock parses an image.lock.json.
func ReadLock(p string) (*Lock, error) { return refvalues.ReadLock(p) }

func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// contentDigest is the SHA-256 of the inputs and settings recorded so far
// (canonical JSON): what the root filesystem is made of. The dm-verity salt
// and UUID derive from it.
func contentDigest(l *Lock) ([]byte, error) {
	b, err := json.Marshal(struct {
		Settings LockSettings `json:"settings"`
		Inputs   []LockInput  `json:"inputs"`
	}{l.Settings, l.Inputs})
	if err != nil {
		return nil, err
	}
	s := sha256.Sum256(b)
	return s[:], nil
}
