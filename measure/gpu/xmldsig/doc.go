// Package xmldsig is the strict XML Signature verifier NVIDIA's RIMs are
// checked with: a small XML tree that keeps what Canonical XML 1.1 needs
// (prefixes, namespace declarations) and refuses what lets two readers see
// different documents (DOCTYPE and entities, processing instructions, xml:
// attributes, literal whitespace in attributes), its canonical form, and the
// one enveloped-signature profile NVIDIA signs with (C14N 1.1, ECDSA P-384,
// SHA-384). It is separate from package gpu so that it is fuzzed and
// reviewed on its own; gpu reads measurements only from the bytes Verify
// returns. The profile is in docs/gpu.md, "Strict profile".
package xmldsig
