package config

import (
	"crypto/sha256"
	"encoding/hex"
)

func digestOf(b []byte) (string, error) {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}
