package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/internal/testenv"
	tdxtest "github.com/google/go-tdx-guest/testing"
)

// realTDXQuote is the production TDX quote (Sapphire Rapids, version 4)
// go-tdx-guest publishes as test data (testing/testdata, Apache-2.0; see
// testdata/README.md), read in place from the module cache. Its PCK chain
// is valid on the date go-tdx-guest's own tests use.
func realTDXQuote(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.ModuleDir(t, "github.com/google/go-tdx-guest"), "testing", "testdata", "tdx_prod_quote_SPR_E4.dat"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var tdxVerifyAt = time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)

func TestVerifyRealTDXQuote(t *testing.T) {
	raw := realTDXQuote(t)
	q, err := ParseTDXQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyTDX(context.Background(), q, TDXOptions{At: tdxVerifyAt}); err != nil {
		t.Fatalf("real quote: %v", err)
	}
	// One byte of the quote's ECDSA signature (after the 48-byte header,
	// the 584-byte TD report and the 4-byte signature length).
	bad := append([]byte(nil), raw...)
	bad[48+584+4+10] ^= 1
	qb, err := ParseTDXQuote(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyTDX(context.Background(), qb, TDXOptions{At: tdxVerifyAt}); !errors.Is(err, ErrNotAuthentic) {
		t.Fatalf("changed signature byte: %v", err)
	}
	// One byte of MRTD (TD report offset 136 after the header).
	bad = append([]byte(nil), raw...)
	bad[48+136] ^= 1
	if qb, err = ParseTDXQuote(bad); err != nil {
		t.Fatal(err)
	}
	if err := VerifyTDX(context.Background(), qb, TDXOptions{At: tdxVerifyAt}); !errors.Is(err, ErrNotAuthentic) {
		t.Fatalf("changed MRTD byte: %v", err)
	}
	if err := VerifyTDX(context.Background(), q, TDXOptions{At: time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC)}); !errors.Is(err, ErrNotAuthentic) {
		t.Fatalf("in 2060: %v", err)
	}
	if _, err := ParseTDXQuote([]byte("nope")); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestMatchTDX(t *testing.T) {
	q, err := ParseTDXQuote(realTDXQuote(t))
	if err != nil {
		t.Fatal(err)
	}
	body := q.GetTdQuoteBody()
	other := append([]byte(nil), body.GetMrTd()...)
	other[0] ^= 1
	ref := TDXReference{Name: "tdx-this", MRTD: [][]byte{other, body.GetMrTd()}}
	for i, r := range body.GetRtmrs() {
		ref.RTMR[i] = r
	}
	ref.RTMR[3], ref.NotComputed[3] = nil, "RTMR3 is extended by the guest"
	got := MatchTDX(q, []TDXReference{{Name: "tdx-other", MRTD: [][]byte{other}}, ref}, nil)
	if got.Configuration != "tdx-this" || !got.OK() {
		t.Fatalf("matching quote: %+v", got)
	}
	ref.RTMR[1] = other
	got = MatchTDX(q, []TDXReference{ref}, nil)
	if got.OK() || got.PolicyOnly() {
		t.Fatalf("other RTMR1: %+v", got)
	}
	var bad []string
	for _, f := range got.Fields {
		if !f.OK {
			bad = append(bad, f.Name)
		}
	}
	if strings.Join(bad, ",") != "RTMR1" {
		t.Fatalf("differing fields %v", bad)
	}
	if got := MatchTDX(q, []TDXReference{{Name: "tdx-other", MRTD: [][]byte{other}}}, nil); got.Configuration != "" || got.Fields[0].Name != "MRTD" {
		t.Fatalf("no configuration: %+v", got)
	}
	t.Logf("MRTD %s", hex.EncodeToString(body.GetMrTd()))
}

// TestPinnedIntelRoot: the pinned root is Intel's SGX Root CA (by its
// published SHA-256 fingerprint) and the certificate go-tdx-guest embeds.
func TestPinnedIntelRoot(t *testing.T) {
	sum := sha256.Sum256(IntelSGXRootCA.Raw)
	if got := hex.EncodeToString(sum[:]); got != "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3" {
		t.Fatalf("fingerprint %s", got)
	}
	b, err := os.ReadFile(filepath.Join(testenv.ModuleDir(t, "github.com/google/go-tdx-guest"), "verify", "trusted_root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || !bytes.Equal(blk.Bytes, IntelSGXRootCA.Raw) {
		t.Fatal("the pinned root differs from go-tdx-guest's")
	}
}

// tdxCollateral is go-tdx-guest's sample PCS collateral for its quote
// (testing/testdata: TCB info and QE identity bodies; the issuer chain PCS
// sends in a header, from its testing package).
func tdxCollateral(t *testing.T) *TDXCollateral {
	t.Helper()
	dir := filepath.Join(testenv.ModuleDir(t, "github.com/google/go-tdx-guest"), "testing", "testdata")
	tcb, err := os.ReadFile(filepath.Join(dir, "sample_tcbInfo_response"))
	if err != nil {
		t.Fatal(err)
	}
	qe, err := os.ReadFile(filepath.Join(dir, "sample_qeIdentity_response"))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := url.QueryUnescape(tdxtest.TcbInfoHeader["Tcb-Info-Issuer-Chain"][0])
	if err != nil {
		t.Fatal(err)
	}
	return &TDXCollateral{TCBInfo: tcb, QEIdentity: qe, IssuerChain: []byte(chain)}
}

// TestTDXCollateral: the sample collateral's signatures and chain verify
// offline, and its TCB levels are evaluated for the real quote: none
// matches this platform (go-tdx-guest publishes no collateral for that
// quote), which is a TCB status failure, not an authenticity one. After its
// nextUpdate, or with one byte of the TCB info changed, the collateral
// itself does not verify.
func TestTDXCollateral(t *testing.T) {
	q, err := ParseTDXQuote(realTDXQuote(t))
	if err != nil {
		t.Fatal(err)
	}
	c := tdxCollateral(t)
	err = CheckTDXCollateral(context.Background(), q, c, TDXOptions{At: tdxVerifyAt})
	if !errors.Is(err, ErrTCBStatus) || !strings.Contains(err.Error(), "no matching TCB level") {
		t.Fatalf("sample collateral: %v", err)
	}
	for name, o := range map[string]struct {
		c  *TDXCollateral
		at time.Time
	}{
		"after nextUpdate": {c, time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC)},
		"changed TCB info": {&TDXCollateral{TCBInfo: bytes.Replace(c.TCBInfo, []byte(`"tcbEvaluationDataNumber":15`), []byte(`"tcbEvaluationDataNumber":16`), 1), QEIdentity: c.QEIdentity, IssuerChain: c.IssuerChain}, tdxVerifyAt},
	} {
		err := CheckTDXCollateral(context.Background(), q, o.c, TDXOptions{At: o.at})
		if !errors.Is(err, ErrNotAuthentic) {
			t.Errorf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
