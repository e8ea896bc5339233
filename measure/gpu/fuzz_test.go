package gpu

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/measure/gpu/xmldsig"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

// seedFiles adds the fixture files matching pattern (under fixtures/gpu) to
// a fuzz corpus. Outside CI without ../shared the corpus is just the
// inline seeds.
func seedFiles(f *testing.F, patterns ...string) {
	dir := filepath.Join(testenv.SharedDir(f), "fixtures", "gpu")
	for _, p := range patterns {
		files, _ := filepath.Glob(filepath.Join(dir, p))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
}

// FuzzParseRIM drives the XML tree parser, the canonicalizer, the strict
// signature profile and the SWID reader with arbitrary documents. Whatever
// parses must canonicalize to a document that parses again to the same
// canonical bytes (C14N is idempotent).
func FuzzParseRIM(f *testing.F) {
	seedFiles(f, "nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag", "attestation-sdk/rims/*.xml")
	f.Add([]byte(testRIMBody))
	f.Add([]byte(`<a xmlns="urn:a" xmlns:p="urn:p" p:x="1"><p:b/>t&amp;<![CDATA[<]]></a>`))
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = VerifyRIM(data, RIMOptions{ChainOptions: ChainOptions{At: at, AllowExpired: true}})
		doc, err := xmldsig.Parse(data)
		if err != nil {
			return
		}
		c1 := xmldsig.Canonicalize(doc, nil)
		doc2, err := xmldsig.Parse(c1)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, c1)
		}
		if c2 := xmldsig.Canonicalize(doc2, nil); !bytes.Equal(c1, c2) {
			t.Fatalf("canonicalization is not idempotent:\n%s\n%s", c1, c2)
		}
		_, _ = parseSWID(doc)
	})
}

// FuzzParseEvidence drives the evidence-file reader (attestation SDK, NRAS
// and Trustee JSON) and the per-GPU items made from it; the report parser
// itself is fuzzed in package spdm.
func FuzzParseEvidence(f *testing.F) {
	seedFiles(f, "attestation-sdk/evidence/*.json", "trustee/*.json")
	f.Add([]byte(`{"evidence_list":[{"arch":"HOPPER","evidence":"","certificate":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseEvidence(data)
		_, _ = ParseItems(data, "fuzz")
	})
}
