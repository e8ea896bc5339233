package evidence

import (
	"encoding/binary"
	"fmt"
)

// The TDX quote version 4 layout ("Intel TDX DCAP Quoting Library API",
// appendix A.3 "Version 4 Quote Format"; Intel's SGX/TDX DCAP
// QuoteVerification sources name the same parts):
//
//	0     header              48 bytes (version 4, attestation key type 2, TEE type 0x81)
//	48    TD quote body      584 bytes (the TD report: MRTD, RTMRs, REPORTDATA …)
//	632   signed data size     4 bytes, little-endian
//	636   signed data (ECDSA 256-bit quote v4 auth data):
//	        signature           64
//	        attestation key     64
//	        certification data: type 2 (6: QE report certification data), size 4, then size bytes:
//	          QE report        384
//	          QE report sig     64
//	          QE auth data: size 2, then size bytes
//	          certification data: type 2 (5: PCK certificate chain), size 4, then size bytes
//
// Bytes after the signed data are allowed (go-tdx-guest keeps them as
// extra bytes).
const (
	quoteHeaderSize        = 48
	quoteBodySize          = 584
	quoteSignedDataAt      = quoteHeaderSize + quoteBodySize + 4
	quoteSigAndKeySize     = 64 + 64
	certDataHeaderSize     = 2 + 4
	qeReportSize           = 384
	qeReportSigSize        = 64
	certTypeQEReport       = 6
	certTypePCKChain       = 5
	quoteSignedDataMinSize = quoteSigAndKeySize + certDataHeaderSize + qeReportSize + qeReportSigSize + 2 + certDataHeaderSize
)

// checkQuoteV4Layout walks a binary version 4 quote's nested lengths before
// anything else reads it: go-tdx-guest's parser (abi.QuoteToProto) slices
// by the lengths the quote declares without checking them against the
// bytes there are, and panics on a short signed data (found by the
// hostile-input pass: a signed-data size of 0–133 at offset 632). Every
// length is checked here, so the library only ever sees a quote whose
// parts fit, and a hostile quote is an input error naming the part.
func checkQuoteV4Layout(b []byte) error {
	if len(b) < quoteSignedDataAt {
		return fmt.Errorf("%d bytes, shorter than the %d-byte header, TD quote body and signed-data size of a version 4 quote", len(b), quoteSignedDataAt)
	}
	size := uint64(binary.LittleEndian.Uint32(b[quoteSignedDataAt-4:]))
	rest := uint64(len(b) - quoteSignedDataAt)
	if size > rest {
		return fmt.Errorf("the signed data (offset %d) declares %d bytes, but only %d follow", quoteSignedDataAt-4, size, rest)
	}
	if size < quoteSignedDataMinSize {
		return fmt.Errorf("the signed data (offset %d) declares %d bytes, fewer than the %d its fixed parts need (signature, attestation key, QE report, its signature and the length fields)", quoteSignedDataAt-4, size, quoteSignedDataMinSize)
	}
	sd := b[quoteSignedDataAt : quoteSignedDataAt+int(size)]
	cd := sd[quoteSigAndKeySize:]
	typ, csize := binary.LittleEndian.Uint16(cd), uint64(binary.LittleEndian.Uint32(cd[2:]))
	if typ != certTypeQEReport {
		return fmt.Errorf("the certification data has type %d, want %d (QE report certification data)", typ, certTypeQEReport)
	}
	cd = cd[certDataHeaderSize:]
	if csize != uint64(len(cd)) {
		return fmt.Errorf("the certification data declares %d bytes, but the signed data leaves %d for it", csize, len(cd))
	}
	qe := cd[qeReportSize+qeReportSigSize:]
	auth := uint64(binary.LittleEndian.Uint16(qe))
	qe = qe[2:]
	if auth+certDataHeaderSize > uint64(len(qe)) {
		return fmt.Errorf("the QE authentication data declares %d bytes, but only %d remain for it and the PCK certificate chain's %d-byte header", auth, len(qe), certDataHeaderSize)
	}
	pck := qe[auth:]
	typ, psize := binary.LittleEndian.Uint16(pck), uint64(binary.LittleEndian.Uint32(pck[2:]))
	if typ != certTypePCKChain {
		return fmt.Errorf("the QE report's certification data has type %d, want %d (PCK certificate chain)", typ, certTypePCKChain)
	}
	if psize != uint64(len(pck)-certDataHeaderSize) {
		return fmt.Errorf("the PCK certificate chain declares %d bytes, but %d remain for it", psize, len(pck)-certDataHeaderSize)
	}
	return nil
}
