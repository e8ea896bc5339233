package xmldsig

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

// TestCommentsDropped: comments, inside or outside the document element,
// are not part of the canonical form without comments (C14N 1.1 §2.1).
func TestCommentsDropped(t *testing.T) {
	a, err := Parse([]byte("<!-- x -->\n<a><!-- y -->b<c/><!--z--></a>\n<!-- w -->"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(Canonicalize(a, nil)); got != "<a>b<c></c></a>" {
		t.Fatalf("got %s", got)
	}
}

// TestStrictProfile: what the parser refuses so that two readers cannot
// see different documents (docs/gpu.md, "Strict profile").
func TestStrictProfile(t *testing.T) {
	for name, doc := range map[string]string{
		"doctype":           `<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`,
		"processing":        `<a><?pi x?></a>`,
		"xml: attribute":    `<a xml:id="x"/>`,
		"tab in attribute":  "<a b=\"x\ty\"/>",
		"undeclared prefix": `<p:a/>`,
		"two roots":         `<a/><b/>`,
		"text outside":      `x<a/>`,
		"empty":             ``,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted %q", name, doc)
		}
	}
}

// TestVerifyRefusesUnsigned: a document without the one enveloped
// signature is a signature error, never a panic or a pass.
func TestVerifyRefusesUnsigned(t *testing.T) {
	doc, err := Parse([]byte(`<a xmlns:ds="` + NSDSig + `"><b/></a>`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(doc, func([]*x509.Certificate) error { return nil })
	if !errors.Is(err, ErrSignature) {
		t.Fatalf("unsigned document: %v", err)
	}
}

// FuzzParse drives the strict parser, the canonicalizer and the signature
// profile on their own: whatever parses canonicalizes to a document that
// parses again to the same bytes (C14N is idempotent), and Verify returns
// an error or a signed subset, never panics.
func FuzzParse(f *testing.F) {
	dir := filepath.Join(testenv.SharedDir(f), "fixtures", "gpu")
	for _, pat := range []string{"nvtrust/rims/*.swidtag", "attestation-sdk/rims/*.xml"} {
		files, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`<a xmlns="urn:a" xmlns:p="urn:p" p:x="1"><p:b/>t&amp;<![CDATA[<]]></a>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			return
		}
		c1 := Canonicalize(doc, nil)
		doc2, err := Parse(c1)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, c1)
		}
		if c2 := Canonicalize(doc2, nil); !bytes.Equal(c1, c2) {
			t.Fatalf("canonicalization is not idempotent:\n%s\n%s", c1, c2)
		}
		if s, err := Verify(doc, func([]*x509.Certificate) error { return nil }); err == nil && !strings.Contains(string(data), "Signature") {
			t.Fatalf("a document without a Signature verified: %v", s)
		}
	})
}
