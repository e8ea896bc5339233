package evidence

import (
	"bytes"
	"context"
	"crypto/x509"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// ParseTDXQuote reads a TDX quote: Intel's binary format version 4 (as
// the guest's configfs-tsm or the QGS return it), or go-tdx-guest's
// QuoteV4 protobuf, binary or text.
func ParseTDXQuote(b []byte) (*pb.QuoteV4, error) {
	if len(b) >= 2 && binary.LittleEndian.Uint16(b) == 4 {
		if err := checkQuoteV4Layout(b); err != nil {
			return nil, fmt.Errorf("TDX quote version 4: %w", err)
		}
	}
	if q, err := abi.QuoteToProto(b); err == nil {
		if v4, ok := q.(*pb.QuoteV4); ok {
			return v4, nil
		}
	} else if len(b) >= 2 && binary.LittleEndian.Uint16(b) == 4 {
		return nil, fmt.Errorf("TDX quote version 4: %w", err)
	}
	// A protobuf is checked for the shape of a quote before anything reads
	// it: go-tdx-guest's verifier dereferences its header unchecked (found
	// by FuzzParseTDXQuote).
	q := &pb.QuoteV4{}
	if err := proto.Unmarshal(b, q); err == nil && q.GetTdQuoteBody() != nil {
		if err := abi.CheckQuoteV4(q); err != nil {
			return nil, fmt.Errorf("QuoteV4 protobuf: %w", err)
		}
		return q, nil
	}
	q = &pb.QuoteV4{}
	if err := prototext.Unmarshal(b, q); err == nil && q.GetTdQuoteBody() != nil {
		if err := abi.CheckQuoteV4(q); err != nil {
			return nil, fmt.Errorf("QuoteV4 protobuf: %w", err)
		}
		return q, nil
	}
	return nil, fmt.Errorf("not a TDX quote: %d bytes, neither Intel's version 4 quote format nor a go-tdx-guest QuoteV4 protobuf", len(b))
}

// TDXOptions say how to verify a quote.
type TDXOptions struct {
	// At is the time the certificates must be valid at.
	At time.Time
	// Roots, when set, replaces the Intel SGX root CA pinned in
	// go-tdx-guest: for private or test chains only.
	Roots *x509.CertPool
}

// roots is the root pool to trust: the pinned Intel root unless replaced.
// It is always given explicitly: go-tdx-guest would otherwise log a
// warning about its embedded root to stdout (its logger writes there).
func (o TDXOptions) roots() *x509.CertPool {
	if o.Roots != nil {
		return o.Roots
	}
	p := x509.NewCertPool()
	p.AddCert(IntelSGXRootCA)
	return p
}

// VerifyTDX checks the quote's signature by the quoting enclave's
// attestation key, the QE report's signature and binding, and the PCK
// certificate chain in the quote up to the pinned Intel SGX root CA,
// offline (go-tdx-guest verify without collateral or revocation lists).
// Errors wrap ErrNotAuthentic.
func VerifyTDX(ctx context.Context, q *pb.QuoteV4, o TDXOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.At.IsZero() {
		return errNoTime
	}
	if err := abi.CheckQuoteV4(q); err != nil {
		return fmt.Errorf("%w: %v", ErrNotAuthentic, err)
	}
	// One signature chain over a bounded quote: no loop to interrupt.
	opts := &verify.Options{Now: o.At, TrustedRoots: o.roots()}
	if err := verify.TdxQuote(q, opts); err != nil {
		return fmt.Errorf("%w: %v", ErrNotAuthentic, err)
	}
	return nil
}

// TDXReference is one measured configuration of a release.
type TDXReference struct {
	// Name names the configuration ("tdx-qemu-td").
	Name string
	// MRTD lists the MRTD of each page order the release computed (one
	// is enough to match); PageOrders names them, in the same order.
	MRTD       [][]byte
	PageOrders []string
	// RTMR holds the registers the release computed; nil ones are not
	// compared (NotComputed says why).
	RTMR        [4][]byte
	NotComputed [4]string
	// XFAM is the XFAM the release expects (nil: any).
	XFAM *uint64
}

// IntelSGXRootCA is the root of every PCK certificate chain, pinned in
// cvmkit (roots/README.md says where it comes from).
var IntelSGXRootCA = func() *x509.Certificate {
	b, _ := pem.Decode(intelSGXRootPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("evidence: the pinned Intel SGX root does not parse: " + err.Error())
	}
	return c
}()

//go:embed roots/intel-sgx-root-ca.pem
var intelSGXRootPEM []byte

// tdAttributesDebug is TD_ATTRIBUTES bit 0, DEBUG (TDX module ABI spec).
const tdAttributesDebug = 1

// MatchTDX finds the configuration whose MRTD the quote carries and
// compares RTMR0–3 where the release computed them, XFAM, the DEBUG
// attribute (never allowed) and REPORTDATA against nonce when given.
func MatchTDX(q *pb.QuoteV4, refs []TDXReference, nonce []byte) *Match {
	body := q.GetTdQuoteBody()
	m := &Match{}
	got := body.GetMrTd()
	var ref *TDXReference
	for i := range refs {
		for j, v := range refs[i].MRTD {
			if bytes.Equal(v, got) && ref == nil {
				ref = &refs[i]
				if j < len(ref.PageOrders) {
					m.Entry = ref.PageOrders[j]
				}
			}
		}
		if ref != nil {
			break
		}
	}
	if ref == nil {
		names := make([]string, len(refs))
		for i, x := range refs {
			names[i] = x.Name
		}
		return noMatch("MRTD", got, names)
	}
	m.Configuration = ref.Name
	m.Fields = append(m.Fields, Field{Name: "MRTD", Got: hex.EncodeToString(got), Want: hex.EncodeToString(got), OK: true})
	rtmrs := body.GetRtmrs()
	for i := 0; i < 4; i++ {
		var g []byte
		if i < len(rtmrs) {
			g = rtmrs[i]
		}
		name := fmt.Sprintf("RTMR%d", i)
		if ref.RTMR[i] == nil {
			m.Fields = append(m.Fields, Field{Name: name, Got: hex.EncodeToString(g), Want: NotCompared + ref.NotComputed[i], OK: true})
			continue
		}
		m.Fields = append(m.Fields, Field{Name: name, Got: hex.EncodeToString(g), Want: hex.EncodeToString(ref.RTMR[i]), OK: bytes.Equal(g, ref.RTMR[i])})
	}
	if ref.XFAM != nil {
		var x uint64
		if b := body.GetXfam(); len(b) == 8 {
			x = binary.LittleEndian.Uint64(b)
		}
		m.Fields = append(m.Fields, Field{Name: "XFAM", Got: fmt.Sprintf("%#x", x), Want: fmt.Sprintf("%#x", *ref.XFAM), OK: x == *ref.XFAM})
	}
	attr := body.GetTdAttributes()
	debug := len(attr) > 0 && attr[0]&tdAttributesDebug != 0
	m.Fields = append(m.Fields, Field{Name: "TD_ATTRIBUTES", Got: hex.EncodeToString(attr), Want: "DEBUG clear", OK: !debug, Policy: true})
	if nonce != nil {
		m.Fields = append(m.Fields, nonceField("REPORTDATA", body.GetReportData(), nonce))
	}
	return m
}

// TDXCollateral is Intel's collateral for a quote, as PCS serves it: the
// TDX TCB info and the TD quoting enclave identity (JSON bodies), and the
// issuer chain PCS sends with them (PEM: Intel SGX TCB Signing, then the
// root). Given as files, it is checked offline.
type TDXCollateral struct {
	TCBInfo, QEIdentity, IssuerChain []byte
}

// ErrTCBStatus wraps a TCB status other than UpToDate (of the platform, its
// TDX module or its quoting enclave) in the collateral.
var ErrTCBStatus = errors.New("the platform's TCB is not up to date")

// CheckTDXCollateral verifies the collateral's signatures (by the TCB
// signing certificate, chained to the pinned root) and validity at o.At,
// then the platform's and quoting enclave's TCB status in it (go-tdx-guest
// verify with collateral). Run it after VerifyTDX: a failure here is about
// the platform's firmware, not the quote's authenticity.
func CheckTDXCollateral(ctx context.Context, q *pb.QuoteV4, c *TDXCollateral, o TDXOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.At.IsZero() {
		return errNoTime
	}
	g := &collateralGetter{c: c, chain: url.QueryEscape(string(c.IssuerChain))}
	opts := &verify.Options{Now: o.At, TrustedRoots: o.roots(), GetCollateral: true, Getter: g}
	if err := verify.TdxQuote(q, opts); err != nil {
		// go-tdx-guest has no typed errors for these: a status failure
		// says so in its message; anything else is collateral that does
		// not verify (signature, chain, validity period).
		if errors.Is(err, verify.ErrTcbStatus) || strings.Contains(err.Error(), "TCB status check") || strings.Contains(err.Error(), "TCB Status") {
			return fmt.Errorf("%w: %v", ErrTCBStatus, err)
		}
		return fmt.Errorf("%w: collateral: %v", ErrNotAuthentic, err)
	}
	return nil
}

// collateralGetter answers go-tdx-guest's PCS requests from the files.
type collateralGetter struct {
	c     *TDXCollateral
	chain string
}

func (g *collateralGetter) Get(u string) (map[string][]string, []byte, error) {
	switch {
	case strings.HasPrefix(u, strings.TrimSuffix(pcs.TcbInfoURL(""), "=")):
		return map[string][]string{"Tcb-Info-Issuer-Chain": {g.chain}}, g.c.TCBInfo, nil
	case u == pcs.QeIdentityURL():
		return map[string][]string{"Sgx-Enclave-Identity-Issuer-Chain": {g.chain}}, g.c.QEIdentity, nil
	}
	return nil, nil, fmt.Errorf("%s is not among the collateral files given (cvmkit checks offline)", u)
}
