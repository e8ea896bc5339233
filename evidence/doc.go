// Package evidence checks attestation evidence from a real machine — an
// AMD SEV-SNP report or an Intel TDX quote — against a release's reference
// values: first that the evidence is authentic (its signature and
// certificate chain up to the vendor roots pinned in go-sev-guest and
// go-tdx-guest, offline, at a given time), then which measured
// configuration of the release it matches and, if none, which field
// differs.
//
// It answers "does this VM run this release?" for an auditor holding
// evidence a VM produced; key authorities make the same decision with the
// policies the release emits.
package evidence
