// Package sign writes and checks the release's in-toto statements
// (reference values, SLSA provenance) as sigstore bundles with DSSE
// envelopes: cosign key pairs, KMS keys, or keyless Fulcio/Rekor signing.
package sign
