package textpb

import (
	"bytes"
	"testing"

	checkpb "github.com/google/go-sev-guest/proto/check"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestRoundTrip: Go's own text parser reads what we write back to an equal
// message, and the output is stable.
func TestRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	m := &checkpb.Config{
		RootOfTrust: &checkpb.RootOfTrust{ProductLine: "Milan", CabundlePaths: []string{"a\"b\\c", "ü"}, CheckCrl: true},
		Policy: &checkpb.Policy{
			MinimumGuestSvn: 7, Policy: 0x30000, Measurement: all[:48], HostData: all[200:232],
			Vmpl: wrapperspb.UInt32(0), TrustedIdKeyHashes: [][]byte{all[:48], all[48:96]}, RequireIdBlock: true,
			MinimumVersion: "1.55",
		},
	}
	out := Marshal(m)
	got := &checkpb.Config{}
	if err := prototext.Unmarshal(out, got); err != nil {
		t.Fatalf("prototext cannot read:\n%s\n%v", out, err)
	}
	if !proto.Equal(m, got) {
		t.Fatalf("round trip differs:\n%s", out)
	}
	if !bytes.Equal(out, Marshal(got)) {
		t.Fatal("not stable")
	}
	// Fields in number order: root_of_trust is field 1 of Config, policy 2;
	// in RootOfTrust, cabundle_paths (2) comes before product_line (6).
	if !bytes.HasPrefix(out, []byte("root_of_trust {\n  cabundle_paths: \"a\\\"b\\\\c\"\n")) {
		t.Errorf("unexpected layout:\n%s", out)
	}
}
