package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tdx-guest/abi"
	ccpb "github.com/google/go-tdx-guest/proto/checkconfig"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtestdata "github.com/google/go-tdx-guest/testing/testdata"
	"github.com/google/go-tdx-guest/validate"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/refvalues"
)

// TestTDXCheckPolicyWithGoTDXGuest: a TDX quote (go-tdx-guest's sample
// quote) whose body carries cvmkit's MRTD and RTMRs passes go-tdx-guest's
// validate with the policy cvmkit emitted; one changed RTMR byte fails.
func TestTDXCheckPolicyWithGoTDXGuest(t *testing.T) {
	shared := testenv.Shared(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"measure", "tdx", "--json",
		"--firmware", filepath.Join(shared, "fixtures/firmware/trixie/OVMF.fd"),
		"--edk2-profile", "edk2-stable202502", "--memory", "4G", "--vcpus", "1",
		"--acpi-tables", filepath.Join(shared, "fixtures/tdx/acpi/oasis-q35-cpu1-mem2048.tables.bin"),
		"--kernel", filepath.Join(shared, "fixtures/tdx/kernel/debian-linux-image-6.1.0-56-amd64_6.1.192-2/vmlinuz-6.1.0-56-amd64"),
		"--initrd", filepath.Join(shared, "fixtures/tdx/initrd/zero-1MiB.img"),
		"--cmdline", "console=ttyS0", "--tdx-check-dir", dir}, strings.NewReader(""), &stdout, &stderr, func(string) (string, bool) { return "", false })
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res refvalues.TDX
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.MRTD) != 2 || len(res.Files) != 5 {
		t.Fatalf("want two MRTD candidates and their policies, got %+v", res.MRTD)
	}
	values, err := os.ReadFile(filepath.Join(dir, "tdx-values.json"))
	if err != nil || !bytes.HasPrefix(values, []byte(`{"edk2_profile":"edk2-stable202502","mrtd":{"single-pass":"`)) || bytes.ContainsAny(values, " \n") {
		t.Fatalf("tdx-values.json is not canonical JSON: %s (%v)", values, err)
	}
	for _, m := range res.MRTD {
		bin, err := os.ReadFile(filepath.Join(dir, "tdx-"+m.PageOrder+".binpb"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := &ccpb.Config{}
		if err := proto.Unmarshal(bin, cfg); err != nil {
			t.Fatal(err)
		}
		text, _ := os.ReadFile(filepath.Join(dir, "tdx-"+m.PageOrder+".textproto"))
		cfgText := &ccpb.Config{}
		if err := prototext.Unmarshal(text, cfgText); err != nil || !proto.Equal(cfg, cfgText) {
			t.Fatalf("textproto differs from binpb (%v)", err)
		}
		opts, err := validate.PolicyToOptions(cfg.GetPolicy())
		if err != nil {
			t.Fatal(err)
		}
		quote := func(rtmr1Flip bool) *pb.QuoteV4 {
			q, err := abi.QuoteToProto(tdxtestdata.RawQuote)
			if err != nil {
				t.Fatal(err)
			}
			qv4 := q.(*pb.QuoteV4)
			body := qv4.GetTdQuoteBody()
			body.MrTd, _ = hex.DecodeString(m.Value)
			body.Rtmrs = make([][]byte, 4)
			for i, r := range res.RTMR {
				body.Rtmrs[i], _ = hex.DecodeString(*r)
			}
			if rtmr1Flip {
				body.Rtmrs[1][5] ^= 0x80
			}
			return qv4
		}
		if err := validate.TdxQuote(quote(false), opts); err != nil {
			t.Fatalf("%s: the quote with cvmkit's values fails cvmkit's policy: %v", m.PageOrder, err)
		}
		err = validate.TdxQuote(quote(true), opts)
		if err == nil || !strings.Contains(err.Error(), "RTMR[1]") {
			t.Fatalf("%s: one changed RTMR1 byte: validate error = %v", m.PageOrder, err)
		}
	}
}
