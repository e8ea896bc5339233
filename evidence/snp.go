package evidence

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/cvmkit/cvmkit/refvalues"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// ErrNotAuthentic wraps every failure to verify evidence's signature or
// certificate chain.
var ErrNotAuthentic = errors.New("evidence is not authentic")

// ParseSNPReport reads an SEV-SNP attestation report as the tools write
// it: the raw 1184-byte report (/dev/sev-guest, snpguest's report.bin, the
// SNP ABI spec's ATTESTATION_REPORT), or go-sev-guest's Attestation
// protobuf (its attest tool's binary or text output), which may carry the
// certificate chain.
func ParseSNPReport(b []byte) (*spb.Attestation, error) {
	if len(b) == abi.ReportSize {
		r, err := abi.ReportToProto(b)
		if err != nil {
			return nil, fmt.Errorf("raw SEV-SNP report: %w", err)
		}
		return &spb.Attestation{Report: r}, nil
	}
	att := &spb.Attestation{}
	if err := proto.Unmarshal(b, att); err == nil && att.GetReport() != nil {
		return att, nil
	}
	att = &spb.Attestation{}
	if err := prototext.Unmarshal(b, att); err == nil && att.GetReport() != nil {
		return att, nil
	}
	return nil, fmt.Errorf("not an SEV-SNP report: %d bytes, neither the %d-byte raw report nor a go-sev-guest Attestation (binary or text protobuf)", len(b), abi.ReportSize)
}

// SNPOptions say how to verify a report.
type SNPOptions struct {
	// VCEK is the report's signing certificate (VCEK or VLEK), DER or PEM,
	// as AMD's KDS serves it; nil uses the one in the Attestation.
	VCEK []byte
	// Product is the product line ("Milan", "Genoa", "Turin") when the
	// report does not say it (version 2 reports); empty lets go-sev-guest
	// take it from the report or the certificates.
	Product string
	// At is the time the certificates must be valid at.
	At time.Time
	// Roots, when set, is a PEM ASK + ARK (AMD KDS cert_chain form) to
	// trust instead of the AMD roots pinned in go-sev-guest: for private
	// or test chains only.
	Roots []byte
}

// VerifySNP checks the report's signature with the VCEK and the VCEK's
// chain up to the pinned AMD roots, offline (go-sev-guest verify, no
// certificate fetching, no revocation lists). Errors wrap ErrNotAuthentic.
func VerifySNP(ctx context.Context, att *spb.Attestation, o SNPOptions) error {
	if o.At.IsZero() {
		return errNoTime
	}
	// The caller's attestation stays as it was given: the VCEK goes into a
	// copy.
	att = proto.Clone(att).(*spb.Attestation)
	if o.VCEK != nil {
		der, err := derOf(o.VCEK)
		if err != nil {
			return fmt.Errorf("VCEK: %w", err)
		}
		if att.CertificateChain == nil {
			att.CertificateChain = &spb.CertificateChain{}
		}
		att.CertificateChain.VcekCert = der
		if si, err := abi.ParseSignerInfo(att.GetReport().GetSignerInfo()); err == nil && si.SigningKey == abi.VlekReportSigner {
			att.CertificateChain.VlekCert, att.CertificateChain.VcekCert = der, nil
		}
	}
	if len(att.GetCertificateChain().GetVcekCert()) == 0 && len(att.GetCertificateChain().GetVlekCert()) == 0 {
		return fmt.Errorf("%w: no VCEK or VLEK certificate given (fetch it from AMD's KDS, e.g. snpguest fetch vcek)", ErrNotAuthentic)
	}
	opts := &verify.Options{DisableCertFetching: true, Now: o.At}
	if o.Product != "" {
		p, err := kds.ParseProductLine(o.Product)
		if err != nil {
			return fmt.Errorf("product %q: %w", o.Product, err)
		}
		opts.Product = p
	}
	if o.Roots != nil {
		line := o.Product
		if line == "" {
			line = "Milan"
		}
		r := trust.AMDRootCertsProduct(line)
		if err := r.FromKDSCertBytes(o.Roots); err != nil {
			return fmt.Errorf("roots: %w", err)
		}
		opts.TrustedRoots = map[string][]*trust.AMDRootCerts{line: {r}}
	}
	if err := verify.SnpAttestationContext(ctx, att, opts); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %v", ErrNotAuthentic, err)
	}
	return nil
}

// snpPolicyDebugBit is the guest policy's DEBUG bit.
const snpPolicyDebugBit = 19

func setClear(b bool) string {
	if b {
		return "set"
	}
	return "clear"
}

// SNP ABI spec, ATTESTATION_REPORT: SIGNATURE_ALGO at 0x34 (1 = ECDSA
// P-384 with SHA-384), the signature at 0x2A0 (R and S, 72 bytes each,
// little-endian), over bytes 0x0–0x29F.
const (
	snpSigAlgoOffset = 0x34
	snpSigOffset     = 0x2a0
	snpSigRSSize     = 0x48
)

// VerifySNPRawSignature checks the signature of a raw report with the
// VCEK's key alone, on the bytes as they are: for a report whose fields do
// not parse, it tells a changed report (its signature fails: not
// authentic) from a genuine one cvmkit cannot read. Errors wrap
// ErrNotAuthentic.
func VerifySNPRawSignature(raw, vcek []byte) error {
	if len(raw) != abi.ReportSize {
		return fmt.Errorf("%w: %d bytes, not a %d-byte report", ErrNotAuthentic, len(raw), abi.ReportSize)
	}
	der, err := derOf(vcek)
	if err != nil {
		return fmt.Errorf("VCEK: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if algo := binary.LittleEndian.Uint32(raw[snpSigAlgoOffset:]); algo != 1 {
		return fmt.Errorf("%w: signature algorithm %d (only 1, ECDSA P-384 with SHA-384, is defined)", ErrNotAuthentic, algo)
	}
	le := func(b []byte) *big.Int {
		be := make([]byte, len(b))
		for i := range b {
			be[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(be)
	}
	r, s := le(raw[snpSigOffset:snpSigOffset+snpSigRSSize]), le(raw[snpSigOffset+snpSigRSSize:snpSigOffset+2*snpSigRSSize])
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: the VCEK's key is not an ECDSA key", ErrNotAuthentic)
	}
	sum := sha512.Sum384(raw[:snpSigOffset])
	if !ecdsa.Verify(pub, sum[:], r, s) {
		return fmt.Errorf("%w: the report's signature does not verify over its bytes with this VCEK", ErrNotAuthentic)
	}
	return nil
}

// derOf accepts a DER certificate or the first PEM certificate.
func derOf(b []byte) ([]byte, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, err
	}
	return b, nil
}

// TCB is a minimum firmware TCB (security patch levels).
// TCB is an SEV-SNP TCB version (refvalues.TCB, one type for the
// document, the policies and the evidence checks).
type TCB = refvalues.TCB

// SNPReference is one measured configuration of a release.
type SNPReference struct {
	// Name names the configuration ("snp-qemu-epyc/qemu-EPYC-Milan-2vcpu").
	Name        string
	Measurement []byte
	// Policy is the guest policy the release launches with (nil: any).
	Policy *uint64
	// HostData, IDKeyDigest, AuthorKeyDigest, FamilyID and ImageID are
	// compared when set (refvalues.SNP.Pins decides which are).
	HostData, IDKeyDigest, AuthorKeyDigest, FamilyID, ImageID []byte
	// MinimumGuestSVN is the ID block's guest SVN, which the report's
	// GUEST_SVN must reach (nil: not compared), as go-sev-guest's
	// minimum_guest_svn.
	MinimumGuestSVN *uint32
	// VMPL is the privilege level the report must have been requested at
	// (nil: not compared).
	VMPL *uint32
	// MinimumTCB is the oldest firmware the release accepts (nil: any).
	MinimumTCB *TCB
}

// MatchSNP finds the configuration whose measurement the report carries
// and compares the fields the release fixes: the guest policy, HOST_DATA
// and the ID block key digests when set, the reported TCB against the
// minimum, and REPORT_DATA against nonce when given (its first len(nonce)
// bytes; the rest must be zero).
func MatchSNP(r *spb.Report, refs []SNPReference, nonce []byte) *Match {
	m := &Match{}
	got := r.GetMeasurement()
	var ref *SNPReference
	for i := range refs {
		if bytes.Equal(refs[i].Measurement, got) {
			ref = &refs[i]
			break
		}
	}
	if ref == nil {
		names := make([]string, len(refs))
		for i, x := range refs {
			names[i] = x.Name
		}
		return noMatch("MEASUREMENT", got, names)
	}
	m.Configuration = ref.Name
	m.Fields = append(m.Fields, Field{Name: "MEASUREMENT", Got: hex.EncodeToString(got), Want: hex.EncodeToString(ref.Measurement), OK: true})
	if ref.Policy != nil {
		m.Fields = append(m.Fields, Field{Name: "POLICY", Got: fmt.Sprintf("%#x", r.GetPolicy()), Want: fmt.Sprintf("%#x", *ref.Policy), OK: r.GetPolicy() == *ref.Policy})
	}
	for _, f := range []struct {
		name      string
		got, want []byte
	}{{"HOST_DATA", r.GetHostData(), ref.HostData}, {"FAMILY_ID", r.GetFamilyId(), ref.FamilyID}, {"IMAGE_ID", r.GetImageId(), ref.ImageID},
		{"ID_KEY_DIGEST", r.GetIdKeyDigest(), ref.IDKeyDigest}, {"AUTHOR_KEY_DIGEST", r.GetAuthorKeyDigest(), ref.AuthorKeyDigest}} {
		if f.want != nil {
			m.Fields = append(m.Fields, Field{Name: f.name, Got: hex.EncodeToString(f.got), Want: hex.EncodeToString(f.want), OK: bytes.Equal(f.got, f.want)})
		}
	}
	if ref.MinimumGuestSVN != nil {
		m.Fields = append(m.Fields, Field{Name: "GUEST_SVN", Got: fmt.Sprint(r.GetGuestSvn()), Want: fmt.Sprintf("≥ %d", *ref.MinimumGuestSVN), OK: r.GetGuestSvn() >= *ref.MinimumGuestSVN})
	}
	if ref.VMPL != nil {
		// SEV-SNP ABI spec, ATTESTATION_REPORT VMPL (0x30): the VMPL the
		// guest asked for the report at. A lower-privileged component of
		// the VM (VMPL 1–3) can ask for a report that carries the same
		// launch measurement; only the privilege level the release runs
		// its OS at speaks for it.
		m.Fields = append(m.Fields, Field{Name: "VMPL", Got: fmt.Sprint(r.GetVmpl()), Want: fmt.Sprint(*ref.VMPL), OK: r.GetVmpl() == *ref.VMPL})
	}
	// Guest policy bit 19, DEBUG (SEV-SNP ABI spec, GUEST_POLICY): the
	// host may decrypt and change the guest's memory. Never accepted,
	// whatever the release's policy says (as TDX's DEBUG attribute).
	debug := r.GetPolicy()&(1<<snpPolicyDebugBit) != 0
	m.Fields = append(m.Fields, Field{Name: "POLICY.DEBUG", Got: setClear(debug), Want: "clear", OK: !debug, Policy: true})
	if ref.MinimumTCB != nil {
		// SEV-SNP ABI spec, TCB_VERSION: bootloader, TEE, reserved, SNP,
		// microcode (Milan and Genoa layout).
		p := kds.DecomposeTCBVersion(kds.TCBVersion(r.GetReportedTcb()))
		min := *ref.MinimumTCB
		ok := p.BlSpl >= min.Bootloader && p.TeeSpl >= min.TEE && p.SnpSpl >= min.SNP && p.UcodeSpl >= min.Microcode
		m.Fields = append(m.Fields, Field{Name: "REPORTED_TCB",
			Got:  fmt.Sprintf("bootloader %d, tee %d, snp %d, microcode %d", p.BlSpl, p.TeeSpl, p.SnpSpl, p.UcodeSpl),
			Want: fmt.Sprintf("at least bootloader %d, tee %d, snp %d, microcode %d", min.Bootloader, min.TEE, min.SNP, min.Microcode),
			OK:   ok, Policy: true})
	}
	if nonce != nil {
		m.Fields = append(m.Fields, nonceField("REPORT_DATA", r.GetReportData(), nonce))
	}
	return m
}
