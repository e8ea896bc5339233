package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sevcheck "github.com/google/go-sev-guest/proto/check"
	sevvalidate "github.com/google/go-sev-guest/validate"
	ccpb "github.com/google/go-tdx-guest/proto/checkconfig"
	tdxvalidate "github.com/google/go-tdx-guest/validate"
	"google.golang.org/protobuf/proto"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

// TestPolicyFilesLoadInGoSEVGuestAndGoTDXGuest: the files 'cvmkit policy
// sev-check' and 'tdx-check' write load with go-sev-guest's and
// go-tdx-guest's own option converters, carrying the release's values.
func TestPolicyFilesLoadInGoSEVGuestAndGoTDXGuest(t *testing.T) {
	shared := testenv.Shared(t)
	rel := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rel, "measurements"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := func(string) (string, bool) { return "", false }
	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr, env); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		return stdout.String()
	}
	snpDoc := run("measure", "snp", "--json", "--ovmf", filepath.Join(shared, "fixtures/firmware/OVMF.fd"), "--vcpus", "4", "--vcpu-type", "EPYC-Milan", "--host-data", strings.Repeat("ab", 32))
	tdxDoc := run("measure", "tdx", "--json", "--firmware", filepath.Join(shared, "fixtures/firmware/trixie/OVMF.fd"), "--qemu-version", "9.2.0")
	for name, doc := range map[string]string{"snp.json": snpDoc, "tdx.json": tdxDoc} {
		if err := os.WriteFile(filepath.Join(rel, "measurements", name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	run("policy", "sev-check", rel, "-o", filepath.Join(out, "sev"), "--allow-unbound")
	run("policy", "tdx-check", rel, "-o", filepath.Join(out, "tdx"), "--allow-unbound")

	bin, err := os.ReadFile(filepath.Join(out, "sev", "snp-qemu-EPYC-Milan-4vcpu.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	sc := &sevcheck.Config{}
	if err := proto.Unmarshal(bin, sc); err != nil {
		t.Fatal(err)
	}
	so, err := sevvalidate.PolicyToOptions(sc.GetPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if len(so.Measurement) != 48 || !bytes.Equal(so.HostData, bytes.Repeat([]byte{0xab}, 32)) || !strings.Contains(snpDoc, hexString(so.Measurement)) {
		t.Fatalf("go-sev-guest options %+v", so)
	}

	bin, err = os.ReadFile(filepath.Join(out, "tdx", "tdx-single-pass.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	tc := &ccpb.Config{}
	if err := proto.Unmarshal(bin, tc); err != nil {
		t.Fatal(err)
	}
	to, err := tdxvalidate.PolicyToOptions(tc.GetPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tdxDoc, hexString(to.TdQuoteBodyOptions.MrTd)) {
		t.Fatalf("go-tdx-guest MRTD %x is not the release's", to.TdQuoteBodyOptions.MrTd)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
