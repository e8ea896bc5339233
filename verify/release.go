// Package verify is the auditor's check of a signed release folder: the
// bundles, every subject, the folder's inventory, and (with a config) a
// rebuild compared bit for bit. It composes the domain packages.
package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/encrypt"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/sign"
)

// Check statuses.
const (
	OK      = "ok"
	Failed  = "failed"
	Skipped = "skipped"
	// Warning is a check that passed with a reservation the user must
	// read (a release made with allowUnbound).
	Warning = "warning"
)

// Check is one check run (or skipped) and what it found.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// FileResult is the verdict on one file of the release.
type FileResult struct {
	Path   string `json:"path"`
	Status string `json:"status"` // ok, changed, missing, extra
	Want   string `json:"want_sha256,omitempty"`
	Got    string `json:"got_sha256,omitempty"`
}

// Report is what a verification found. Its checks list what ran and what
// was skipped, in order.
type Report struct {
	Dir     string       `json:"dir"`
	Checks  []Check      `json:"checks"`
	Files   []FileResult `json:"files"`
	Rebuild []Compared   `json:"rebuild,omitempty"`
	// Values is the verified reference-values predicate.
	Values *sign.ReferenceValues `json:"-"`
}

func (r *Report) add(name, status, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: status, Detail: detail})
}

// Release verifies a signed release folder. The error is classified
// (package outcome): a signature that does not verify → Signature; a
// missing or extra file → Inventory; a file or rebuilt artifact whose
// bytes differ → Mismatch. The report lists every check either way.
//
// check verifies one bundle and returns the statement it signs (a key
// check in process, or the keyless helper); trusted describes whom it
// trusts, for the report.
func Release(dir string, check func(bundle []byte) ([]byte, error), trusted string) (*Report, error) {
	rep := &Report{Dir: dir}
	att := filepath.Join(dir, sign.AttestationsDir)
	if fi, err := os.Stat(att); err != nil || !fi.IsDir() {
		rep.add("attestations", Failed, "no "+sign.AttestationsDir+"/ folder")
		// A folder with no release content is not an unsigned release:
		// do not advise signing whatever was given.
		if !isRelease(dir) {
			return rep, outcome.InventoryError(fmt.Errorf("%s is not a release folder (no %s/, image/ or measurements/)", dir, sign.AttestationsDir),
				"give the folder 'cvmkit release' (or 'cvmkit sign') wrote, e.g. dist")
		}
		return rep, outcome.InventoryError(fmt.Errorf("%s has no %s/: it was not signed", dir, sign.AttestationsDir), "sign it with 'cvmkit sign "+dir+" --key cosign.key'")
	}
	// The attestations folder holds exactly the statements and bundles.
	expected := map[string]bool{
		sign.StatementPath(sign.ReferenceValuesBase): true, sign.BundlePath(sign.ReferenceValuesBase): true,
	}
	hasImage := false
	if _, err := os.Stat(filepath.Join(dir, "image")); err == nil {
		hasImage = true
		expected[sign.StatementPath(sign.ProvenanceBase)] = true
		expected[sign.BundlePath(sign.ProvenanceBase)] = true
	}
	entries, err := os.ReadDir(att)
	if err != nil {
		return rep, err
	}
	var invErr error
	for _, e := range entries {
		rel := sign.AttestationsDir + "/" + e.Name()
		switch {
		case !expected[rel]:
			rep.Files = append(rep.Files, FileResult{Path: rel, Status: "extra"})
			invErr = outcome.InventoryError(fmt.Errorf("%s: unexpected %s", dir, refvalues.DisplayPath(rel)))
		case !e.Type().IsRegular():
			// A statement or bundle replaced by a symbolic link (which may
			// point outside the folder), a FIFO (which would block) or a
			// device is not the file that was signed.
			rep.Files = append(rep.Files, FileResult{Path: rel, Status: "not a regular file"})
			invErr = outcome.InventoryError(fmt.Errorf("%s: %s is not a regular file (%s): a release holds only files and folders", dir, rel, fileio.TypeName(e.Type())))
		}
	}
	for rel := range expected {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			rep.Files = append(rep.Files, FileResult{Path: rel, Status: "missing"})
			invErr = outcome.InventoryError(fmt.Errorf("%s: %s is missing", dir, rel))
		}
	}
	if invErr != nil {
		rep.add("attestations", Failed, "the attestations folder does not hold exactly the statements and their bundles")
		return rep, invErr
	}

	statements := map[string]*sign.Statement{}
	bases := []string{sign.ReferenceValuesBase}
	if hasImage {
		bases = append(bases, sign.ProvenanceBase)
	}
	for _, base := range bases {
		st, err := verifyStatement(dir, base, check)
		if err != nil {
			rep.add("signature "+base, Failed, err.Error())
			return rep, err
		}
		rep.add("signature "+base, OK, trusted)
		statements[base] = st
	}

	// Every file is a subject of the reference values, with its digest.
	rv := statements[sign.ReferenceValuesBase]
	if rv.PredicateType != sign.ReferenceValuesType {
		err := outcome.SignatureError(fmt.Errorf("%s has predicate type %q, want %q", sign.StatementPath(sign.ReferenceValuesBase), rv.PredicateType, sign.ReferenceValuesType))
		rep.add("predicate", Failed, err.Error())
		return rep, err
	}
	actual, err := sign.Subjects(dir)
	if err != nil {
		rep.add("subjects", Failed, err.Error())
		return rep, outcome.InventoryError(err)
	}
	rep.Files = compareSubjects(rv.Subject, actual)
	// A folder no signed file lies in (an added empty folder) is extra too.
	emptyDirs, err := foldersWithout(dir, actual)
	if err != nil {
		rep.add("subjects", Failed, err.Error())
		return rep, outcome.InventoryError(err)
	}
	for _, d := range emptyDirs {
		rep.Files = append(rep.Files, FileResult{Path: d + "/", Status: "extra"})
	}
	var missing, extra, changed []string
	for _, f := range rep.Files {
		switch f.Status {
		case "missing":
			missing = append(missing, f.Path)
		case "extra":
			extra = append(extra, f.Path)
		case "changed":
			changed = append(changed, f.Path)
		}
	}
	switch {
	case len(missing)+len(extra) > 0:
		d := fmt.Sprintf("missing %s; extra %s", list(missing), list(extra))
		rep.add("subjects", Failed, d)
		return rep, outcome.InventoryError(fmt.Errorf("%s: %s", dir, d), "a release folder must hold exactly the files it was signed with")
	case len(changed) > 0:
		rep.add("subjects", Failed, "changed: "+list(changed))
		f := firstWith(rep.Files, "changed")
		return rep, &outcome.MismatchError{Subject: filepath.Join(dir, f.Path), Register: "sha256", Want: f.Want, Got: f.Got}
	}
	rep.add("subjects", OK, fmt.Sprintf("%d files, every sha256 recomputed", len(actual)))

	if p, ok := statements[sign.ProvenanceBase]; ok {
		if err := checkProvenance(p, rv); err != nil {
			rep.add("provenance", Failed, err.Error())
			return rep, err
		}
		rep.add("provenance", OK, fmt.Sprintf("SLSA provenance v1 over %d image files", len(p.Subject)))
	} else {
		rep.add("provenance", Skipped, "the release has no image/ folder")
	}
	values, err := parseValues(rv)
	if err != nil {
		rep.add("reference values", Failed, err.Error())
		return rep, err
	}
	rep.Values = values
	rep.add("reference values", OK, describeValues(values))
	if err := modelArtifact(rep, dir); err != nil {
		return rep, err
	}
	bindingSummary(rep, dir)
	return rep, nil
}

// modelArtifact recomputes the encrypted weights' OCI artifact digest from
// model/ (signed, checked above) and compares it with model/oci.json's, so
// that whoever pulls the reference release recorded gets these weights.
func modelArtifact(rep *Report, dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(refvalues.ModelArtifactPath)))
	if os.IsNotExist(err) {
		return nil
	}
	var rec refvalues.ModelArtifact
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		rep.add("model artifact", Failed, refvalues.ModelArtifactPath+": "+err.Error())
		return outcome.InputError(err)
	}
	art, err := encrypt.NewArtifact(filepath.Join(dir, refvalues.ModelDir))
	if err != nil {
		rep.add("model artifact", Failed, err.Error())
		return outcome.InputError(err)
	}
	if got := art.Digest.String(); got != rec.Digest || (rec.Pushed != "" && !strings.HasSuffix(rec.Pushed, "@"+got)) {
		rep.add("model artifact", Failed, fmt.Sprintf("model/ gives the OCI artifact %s, but %s records %s (pushed %q)", got, refvalues.ModelArtifactPath, rec.Digest, rec.Pushed))
		return &outcome.MismatchError{Subject: refvalues.ModelArtifactPath, Register: "OCI artifact digest", Want: rec.Digest, Got: got}
	}
	where := "not pushed (model.oci.ref unset)"
	if rec.Pushed != "" {
		where = "pushed as " + rec.Pushed + "; 'cvmkit decrypt " + rec.Pushed + "' pulls exactly these bytes"
	}
	rep.add("model artifact", OK, "OCI artifact "+rec.Digest+" recomputed from model/, "+where)
	return nil
}

// bindingSummary adds what the release's configurations bind, from its
// (verified) bindings.json files: a release made with allowUnbound says so
// here as loudly as when it was made.
func bindingSummary(rep *Report, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, refvalues.KeyAuthorityDir, "*", refvalues.BindingsFile))
	if len(files) == 0 {
		rep.add("binding", Skipped, "the release has no key-authority policies (no bindings.json)")
		return
	}
	seen := map[string]bool{}
	groups := map[string][]string{}
	n := 0
	for _, f := range files {
		var b refvalues.Bindings
		raw, err := fileio.ReadAll(f, "bindings.json", maxAttestation)
		if err != nil || json.Unmarshal(raw, &b) != nil {
			continue
		}
		for _, c := range b.Configurations {
			if seen[c.Configuration] {
				continue
			}
			seen[c.Configuration] = true
			n++
			if len(c.Unbound) == 0 {
				continue
			}
			var why []string
			for _, u := range c.Unbound {
				if w := c.Why[u]; w != "" && !slices.Contains(why, w) {
					why = append(why, w)
				}
			}
			key := strings.Join(c.Unbound, ", ") + " unbound: " + strings.Join(why, "; ")
			groups[key] = append(groups[key], c.Configuration)
		}
	}
	if len(groups) == 0 {
		rep.add("binding", OK, fmt.Sprintf("all %d configurations bind the firmware, kernel, initrd, command line and root filesystem", n))
		return
	}
	var lines []string
	for k, names := range groups {
		lines = append(lines, fmt.Sprintf("%d of %d configurations (%s) leave %s", len(names), n, strings.Join(names, ", "), k))
	}
	sort.Strings(lines)
	rep.add("binding", Warning, "made with allowUnbound: "+strings.Join(lines, "; "))
}

// maxAttestation bounds a statement or bundle read (a statement lists every
// file of the release: a few hundred KiB for thousands of files).
const maxAttestation = 64 << 20

// foldersWithout lists the folders of dir (slash paths, the attestations
// folder aside) that hold none of the files.
func foldersWithout(dir string, files []sign.Subject) ([]string, error) {
	holds := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Name); d != "."; d = path.Dir(d) {
			holds[d] = true
		}
	}
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case rel == sign.AttestationsDir:
			return fs.SkipDir
		case !holds[rel]:
			out = append(out, rel)
			return fs.SkipDir
		}
		return nil
	})
	return out, err
}

func verifyStatement(dir, base string, check func([]byte) ([]byte, error)) (*sign.Statement, error) {
	bundle, err := fileio.ReadAll(filepath.Join(dir, filepath.FromSlash(sign.BundlePath(base))), sign.BundlePath(base), maxAttestation)
	if err != nil {
		return nil, err
	}
	payload, err := check(bundle)
	if err != nil {
		return nil, outcome.SignatureError(fmt.Errorf("%s: %w", sign.BundlePath(base), err))
	}
	file, err := fileio.ReadAll(filepath.Join(dir, filepath.FromSlash(sign.StatementPath(base))), sign.StatementPath(base), maxAttestation)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(file, payload) {
		return nil, outcome.SignatureError(fmt.Errorf("%s differs from the statement its bundle signs", sign.StatementPath(base)))
	}
	st, err := sign.ParseStatement(payload)
	if err != nil {
		return nil, outcome.SignatureError(fmt.Errorf("%s: %w", sign.BundlePath(base), err))
	}
	return st, nil
}

func compareSubjects(want, got []sign.Subject) []FileResult {
	g := map[string]string{}
	for _, s := range got {
		g[s.Name] = s.Digest["sha256"]
	}
	var out []FileResult
	seen := map[string]bool{}
	for _, s := range want {
		seen[s.Name] = true
		w := s.Digest["sha256"]
		d, ok := g[s.Name]
		switch {
		case !ok:
			out = append(out, FileResult{Path: s.Name, Status: "missing", Want: w})
		case d != w:
			out = append(out, FileResult{Path: s.Name, Status: "changed", Want: w, Got: d})
		default:
			out = append(out, FileResult{Path: s.Name, Status: OK, Want: w, Got: d})
		}
	}
	for _, s := range got {
		if !seen[s.Name] {
			out = append(out, FileResult{Path: s.Name, Status: "extra", Got: s.Digest["sha256"]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// checkProvenance: the provenance covers image files that are subjects of
// the reference values, with the same digests.
func checkProvenance(p, rv *sign.Statement) error {
	if p.PredicateType != sign.ProvenanceType {
		return outcome.SignatureError(fmt.Errorf("provenance has predicate type %q", p.PredicateType))
	}
	all := map[string]string{}
	for _, s := range rv.Subject {
		all[s.Name] = s.Digest["sha256"]
	}
	for _, s := range p.Subject {
		if all[s.Name] != s.Digest["sha256"] {
			return outcome.SignatureError(fmt.Errorf("provenance subject %s does not match the reference values", s.Name))
		}
	}
	return nil
}

func parseValues(st *sign.Statement) (*sign.ReferenceValues, error) {
	var v sign.ReferenceValues
	if err := jsonStrict(st.Predicate, &v); err != nil {
		return nil, outcome.InputError(fmt.Errorf("reference-values predicate: %w", err))
	}
	digests := map[string]string{}
	for _, s := range st.Subject {
		digests[s.Name] = s.Digest["sha256"]
	}
	refs := []*sign.FileRef{v.Model}
	if v.Image != nil {
		refs = append(refs, &v.Image.Lock)
	}
	for i := range v.SBOMs {
		refs = append(refs, &v.SBOMs[i].FileRef)
	}
	for _, r := range refs {
		if r != nil && digests[r.Path] != r.SHA256 {
			return nil, outcome.SignatureError(fmt.Errorf("the predicate names %s with sha256 %s, the subjects %q", r.Path, r.SHA256, digests[r.Path]))
		}
	}
	return &v, nil
}

func describeValues(v *sign.ReferenceValues) string {
	var parts []string
	keys := make([]string, 0, len(v.Measurements))
	for k := range v.Measurements {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+" measurements")
	}
	if v.GPU != nil {
		parts = append(parts, "GPU references")
	}
	if v.Image != nil {
		parts = append(parts, "dm-verity root hash and cmdline")
	}
	if v.Model != nil {
		parts = append(parts, "model manifest")
	}
	if len(v.SBOMs) > 0 {
		parts = append(parts, fmt.Sprintf("%d SBOMs", len(v.SBOMs)))
	}
	return "release " + v.Release + ": " + strings.Join(parts, ", ")
}

func list(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = refvalues.DisplayPath(s)
	}
	return strings.Join(q, ", ")
}

func firstWith(l []FileResult, status string) FileResult {
	for _, f := range l {
		if f.Status == status {
			return f
		}
	}
	return FileResult{}
}

// isRelease says whether dir holds what a release (signed or not) holds.
func isRelease(dir string) bool {
	for _, d := range []string{"image", "measurements", "model", "gpu"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}
