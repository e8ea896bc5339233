package sign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/refvalues"
)

// in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md).
const (
	StatementType           = "https://in-toto.io/Statement/v1"
	ReferenceValuesType     = "https://cvmkit.dev/reference-values/v1"
	ProvenanceType          = "https://slsa.dev/provenance/v1"
	AttestationsDir         = "attestations"
	ReferenceValuesBase     = "reference-values"
	ProvenanceBase          = "provenance"
	statementSuffix         = ".intoto.json"
	bundleSuffix            = ".sigstore.json"
	cvmkitBuildType         = "https://cvmkit.dev/build/v1"
	cvmkitBuilderID         = "https://cvmkit.dev/cvmkit"
	maxStatementSubjectPath = 4096
)

// Subject is a released file: its path relative to the release folder and
// its SHA-256.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Marshal encodes a statement canonically: fixed field order, subjects
// sorted by name, no HTML escaping, indented, one final newline.
func (s *Statement) Marshal() ([]byte, error) {
	sort.Slice(s.Subject, func(i, j int) bool { return s.Subject[i].Name < s.Subject[j].Name })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseStatement decodes and checks a statement.
func ParseStatement(b []byte) (*Statement, error) {
	var s Statement
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("not an in-toto statement: %w", err)
	}
	if s.Type != StatementType {
		return nil, fmt.Errorf("statement _type %q, want %q", s.Type, StatementType)
	}
	if len(s.Subject) == 0 {
		return nil, errors.New("statement has no subject")
	}
	seen := map[string]bool{}
	for _, sub := range s.Subject {
		if !validSubjectName(sub.Name) {
			return nil, fmt.Errorf("subject name %q is not a clean relative path", sub.Name)
		}
		if seen[sub.Name] {
			return nil, fmt.Errorf("subject %q is listed twice", sub.Name)
		}
		seen[sub.Name] = true
		if h, ok := sub.Digest["sha256"]; !ok || len(h) != 64 {
			return nil, fmt.Errorf("subject %q has no sha256 digest", sub.Name)
		}
	}
	return &s, nil
}

func validSubjectName(n string) bool {
	return n != "" && len(n) <= maxStatementSubjectPath && !strings.HasPrefix(n, "/") && filepath.ToSlash(filepath.Clean(n)) == n &&
		n != ".." && !strings.HasPrefix(n, "../")
}

// Subjects lists every regular file under dir (except the attestations
// folder) with its SHA-256, sorted by path. Symbolic links and other
// non-regular files are refused: a release is plain files.
func Subjects(dir string) ([]Subject, error) {
	var out []Subject
	err := refvalues.WalkFiles(dir, func(rel string, _ fs.DirEntry) error {
		sum, err := config.FileDigest(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		out = append(out, Subject{Name: rel, Digest: map[string]string{"sha256": sum.Hex()}})
		return nil
	})
	return out, err
}

// StatementPath and BundlePath name a statement's files in a release.
func StatementPath(base string) string { return AttestationsDir + "/" + base + statementSuffix }

// BundlePath is the sigstore bundle of the statement named base.
func BundlePath(base string) string { return AttestationsDir + "/" + base + bundleSuffix }
