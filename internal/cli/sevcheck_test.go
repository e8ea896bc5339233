package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	checkpb "github.com/google/go-sev-guest/proto/check"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/refvalues"
)

func writeP384(t *testing.T, path string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSEVCheckPolicyWithGoSEVGuest: go-sev-guest verifies a report signed
// with its test-only AMD keys that carries cvmkit's measurement and ID block
// values, and validates it against the policy cvmkit emitted; with one
// measurement byte changed (and the report re-signed) validation fails.
func TestSEVCheckPolicyWithGoSEVGuest(t *testing.T) {
	shared := testenv.Shared(t)
	dir := t.TempDir()
	idKey, authorKey := filepath.Join(dir, "id.pem"), filepath.Join(dir, "author.pem")
	writeP384(t, idKey)
	writeP384(t, authorKey)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"measure", "snp", "--json",
		"--ovmf", filepath.Join(shared, "fixtures/firmware/amdsev/OVMF.amdsev.fd"),
		"--kernel", filepath.Join(shared, "fixtures/snp/inputs/kernel.bin"),
		"--initrd", filepath.Join(shared, "fixtures/snp/inputs/initrd.bin"),
		"--append", "console=ttyS0", "--vcpus", "4", "--vcpu-type", "EPYC-Milan",
		"--id-key", idKey, "--author-key", authorKey,
		"--family-id", "00112233445566778899aabbccddeeff", "--image-id", "ffeeddccbbaa99887766554433221100", "--guest-svn", "3",
		"--sev-check-dir", out, "--id-block-dir", out}, strings.NewReader(""), &stdout, &stderr, func(string) (string, bool) { return "", false })
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res refvalues.SNP
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	m := res.Measurements[0]
	name := "qemu-EPYC-Milan-4vcpu"
	if m.Name != name || len(m.Files) != 4 {
		t.Fatalf("entry %+v", m)
	}

	// The policy as go-sev-guest's check tool would load it, in both forms.
	bin, err := os.ReadFile(filepath.Join(out, name+".binpb"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &checkpb.Config{}
	if err := proto.Unmarshal(bin, cfg); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(filepath.Join(out, name+".textproto"))
	cfgText := &checkpb.Config{}
	if err := prototext.Unmarshal(text, cfgText); err != nil {
		t.Fatalf("textproto does not parse: %v", err)
	}
	if !proto.Equal(cfg, cfgText) {
		t.Fatal("binary and text policies differ")
	}
	opts, err := validate.PolicyToOptions(cfg.GetPolicy())
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	signer, err := sevtest.DefaultTestOnlyCertChain(kds.ProductName(abi.DefaultSevProduct()), now)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	measurement := decode(m.Digest)
	attestation := func(measurement []byte) *spb.Attestation {
		t.Helper()
		tcb, _ := kds.ComposeTCBParts(kds.TCBParts{})
		r := &spb.Report{
			Version:         2,
			Policy:          0x30000,
			SignatureAlgo:   1,
			ReportData:      make([]byte, abi.ReportDataSize),
			FamilyId:        decode("00112233445566778899aabbccddeeff"),
			ImageId:         decode("ffeeddccbbaa99887766554433221100"),
			GuestSvn:        3,
			Measurement:     measurement,
			HostData:        make([]byte, abi.HostDataSize),
			IdKeyDigest:     decode(m.IDKeyDigest),
			AuthorKeyDigest: decode(m.AuthorKeyDigest),
			ReportId:        make([]byte, abi.ReportIDSize),
			ReportIdMa:      make([]byte, abi.ReportIDMASize),
			ChipId:          make([]byte, abi.ChipIDSize),
			SignerInfo:      abi.ComposeSignerInfo(abi.SignerInfo{AuthorKeyEn: true}),
			CurrentTcb:      uint64(tcb),
			CommittedTcb:    uint64(tcb),
			ReportedTcb:     uint64(tcb),
			LaunchTcb:       uint64(tcb),
			Signature:       make([]byte, abi.SignatureSize),
		}
		raw, err := abi.ReportToAbiBytes(r)
		if err != nil {
			t.Fatal(err)
		}
		rs, ss, err := signer.Sign(abi.SignedComponent(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := abi.SetSignature(rs, ss, raw); err != nil {
			t.Fatal(err)
		}
		signed, err := abi.ReportToProto(raw)
		if err != nil {
			t.Fatal(err)
		}
		return &spb.Attestation{Report: signed, CertificateChain: &spb.CertificateChain{
			ArkCert: signer.Ark.Raw, AskCert: signer.Ask.Raw, VcekCert: signer.Vcek.Raw}}
	}
	vopts := &verify.Options{
		DisableCertFetching: true,
		Now:                 now,
		Product:             abi.DefaultSevProduct(),
		TrustedRoots: map[string][]*trust.AMDRootCerts{"Milan": {{
			Product: "Milan", ProductCerts: &trust.ProductCerts{Ark: signer.Ark, Ask: signer.Ask}}}},
	}

	good := attestation(measurement)
	if err := verify.SnpAttestation(good, vopts); err != nil {
		t.Fatalf("go-sev-guest does not verify the test report: %v", err)
	}
	if err := validate.SnpAttestation(good, opts); err != nil {
		t.Fatalf("the report with cvmkit's measurement fails cvmkit's policy: %v", err)
	}

	bad := append([]byte(nil), measurement...)
	bad[17] ^= 1
	tampered := attestation(bad)
	if err := verify.SnpAttestation(tampered, vopts); err != nil {
		t.Fatalf("the re-signed report must still verify: %v", err)
	}
	err = validate.SnpAttestation(tampered, opts)
	if err == nil || !strings.Contains(err.Error(), "MEASUREMENT") {
		t.Fatalf("one changed measurement byte: validate error = %v, want a MEASUREMENT mismatch", err)
	}
}
