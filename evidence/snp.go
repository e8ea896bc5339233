package evidence

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
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
	// HostData, IDKeyDigest and AuthorKeyDigest are compared when set.
	HostData, IDKeyDigest, AuthorKeyDigest []byte
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
	}{{"HOST_DATA", r.GetHostData(), ref.HostData}, {"ID_KEY_DIGEST", r.GetIdKeyDigest(), ref.IDKeyDigest}, {"AUTHOR_KEY_DIGEST", r.GetAuthorKeyDigest(), ref.AuthorKeyDigest}} {
		if f.want != nil {
			m.Fields = append(m.Fields, Field{Name: f.name, Got: hex.EncodeToString(f.got), Want: hex.EncodeToString(f.want), OK: bytes.Equal(f.got, f.want)})
		}
	}
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
