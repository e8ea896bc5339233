// Package measure and its sub-packages compute launch measurements: the
// AMD SEV-SNP launch digest (measure/snp), Intel TDX MRTD and RTMRs
// (measure/tdx), NVIDIA GPU reference values (measure/gpu), over firmware
// parsed by measure/ovmf.
//
// Measurement code is pure computation: inputs come in as bytes or readers,
// and no file, network, process or clock is touched here (internal/depcheck
// enforces it), so every value can be recomputed offline by an auditor.
package measure
