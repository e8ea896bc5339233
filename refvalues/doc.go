// Package refvalues holds the documents of a release folder as types: the
// folder layout, the image lock, the SEV-SNP and TDX measurement documents,
// the GPU reference values, the model's key index and the binding report.
//
// It is a base package: build writes the lock, measure/snp and measure/tdx
// make the measurement documents, policy and verify read them, and the
// release composer carries them from one stage to the next in memory. No
// other package declares a mirror of these structs, so a field added here
// reaches every reader. The formats are described in docs/reference-values.md,
// docs/image.md and docs/measure-snp.md / measure-tdx.md.
package refvalues
