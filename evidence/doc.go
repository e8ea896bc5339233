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

// Size limits of the evidence inputs (docs/check.md lists them): each is
// far above what a real input holds and keeps a hostile or mistaken file
// (a disk image, /dev/zero) from being read into memory.
const (
	// MaxReportSize bounds an SEV-SNP report file: the raw report is 1184
	// bytes, a go-sev-guest Attestation with its certificates a few KiB.
	MaxReportSize = 1 << 20
	// MaxCertificateSize bounds a VCEK or VLEK and a roots file (a few
	// PEM certificates).
	MaxCertificateSize = 256 << 10
	// MaxQuoteSize bounds a TDX quote: about 5 KiB with its PCK chain.
	MaxQuoteSize = 1 << 20
	// MaxEventLogSize bounds a CC event log (CCEL) or TCG event log:
	// firmware reserves 64 KiB to 1 MiB for it.
	MaxEventLogSize = 16 << 20
	// MaxCollateralSize bounds each PCS collateral file (TCB info, QE
	// identity, issuer chain): tens of KiB.
	MaxCollateralSize = 16 << 20
)
