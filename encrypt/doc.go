// Package encrypt encrypts model weights for the key authority: each file
// in Tink's streaming-AEAD wire format (AES256_GCM_HKDF_1MB) with associated
// data binding the release and the file path, a manifest of every file, and
// the data keyset wrapped for each recipient (docs/weights-format.md).
package encrypt
