package sign

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
)

// Signed is one statement written by SignRelease.
type Signed struct {
	Statement     string `json:"statement"`
	Bundle        string `json:"bundle"`
	PredicateType string `json:"predicate_type"`
	Subjects      int    `json:"subjects"`
}

// SignRelease writes the reference-values statement (subjects: every file of
// the release) and, when the release has an image lock, the SLSA provenance
// statement (subjects: the image files), each with its sigstore bundle, into
// dir/attestations. The folder is built aside and renamed into place, and an
// existing one is never replaced.
//
// bundle makes the sigstore bundle of a statement: [SignStatement] with a
// key, or sign/keyless.
func SignRelease(ctx context.Context, dir string, bundle func(ctx context.Context, statement []byte) ([]byte, error)) ([]Signed, error) {
	if _, err := os.Lstat(filepath.Join(dir, AttestationsDir)); err == nil {
		return nil, fmt.Errorf("%s already has %s/: remove it to sign again", dir, AttestationsDir)
	}
	subjects, err := Subjects(dir)
	if err != nil {
		return nil, err
	}
	return SignSubjects(ctx, dir, subjects, bundle)
}

// SignSubjects is [SignRelease] over subjects the caller already hashed
// (cvmkit release carries every file's digest from the stage that wrote
// it), so no file is read twice.
func SignSubjects(ctx context.Context, dir string, subjects []Subject, bundle func(ctx context.Context, statement []byte) ([]byte, error)) ([]Signed, error) {
	if _, err := os.Lstat(filepath.Join(dir, AttestationsDir)); err == nil {
		return nil, fmt.Errorf("%s already has %s/: remove it to sign again", dir, AttestationsDir)
	}
	if len(subjects) == 0 {
		return nil, fmt.Errorf("%s holds no file to sign", dir)
	}
	rv, err := BuildReferenceValues(dir, subjects)
	if err != nil {
		return nil, err
	}
	type job struct {
		base, ptype string
		subjects    []Subject
		predicate   any
	}
	jobs := []job{{ReferenceValuesBase, ReferenceValuesType, subjects, rv}}
	if rv.Image != nil {
		prov, err := BuildProvenance(dir)
		if err != nil {
			return nil, err
		}
		var image []Subject
		for _, s := range subjects {
			if strings.HasPrefix(s.Name, "image/") {
				image = append(image, s)
			}
		}
		jobs = append(jobs, job{ProvenanceBase, ProvenanceType, image, prov})
	}
	var out []Signed
	err = atomicfile.Dir(filepath.Join(dir, AttestationsDir), func(tmp string) error {
		for _, j := range jobs {
			st, err := NewStatement(j.subjects, j.ptype, j.predicate)
			if err != nil {
				return err
			}
			body, err := st.Marshal()
			if err != nil {
				return err
			}
			b, err := bundle(ctx, body)
			if err != nil {
				return fmt.Errorf("signing the %s statement: %w", j.base, err)
			}
			for name, data := range map[string][]byte{j.base + statementSuffix: body, j.base + bundleSuffix: b} {
				if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
					return err
				}
			}
			out = append(out, Signed{Statement: StatementPath(j.base), Bundle: BundlePath(j.base), PredicateType: j.ptype, Subjects: len(j.subjects)})
		}
		return nil
	})
	return out, err
}

// WithKey is the bundle function for SignRelease that signs with s.
func WithKey(s *Signer) func(context.Context, []byte) ([]byte, error) {
	return func(_ context.Context, statement []byte) ([]byte, error) { return SignStatement(statement, s) }
}
