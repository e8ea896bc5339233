package sign

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/refvalues"
)

// FileRef names a released file by path and digest.
type FileRef struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// ReferenceValues is the predicate of the reference-values statement: what a
// key authority compares evidence with, and what each value assumes.
type ReferenceValues struct {
	Release string `json:"release"`
	// Image: the dm-verity root hash and command line the launch
	// measurements bind, and the lock that records every input.
	Image *ImageValues `json:"image,omitempty"`
	// Measurements holds the SEV-SNP and TDX documents as cvmkit measure
	// wrote them: per platform configuration the values and their
	// assumptions (firmware digest, VMM, vCPU type and count, policy…).
	Measurements map[string]json.RawMessage `json:"measurements,omitempty"`
	// GPU is the verified NVIDIA reference values (cvmkit gpu reference).
	GPU   json.RawMessage `json:"gpu,omitempty"`
	Model *FileRef        `json:"model_manifest,omitempty"`
	SBOMs []SBOMRef       `json:"sboms,omitempty"`
}

// ImageValues are the image's launch-relevant values.
type ImageValues struct {
	Lock     FileRef                `json:"lock"`
	Verity   refvalues.LockVerity   `json:"verity"`
	Cmdline  string                 `json:"cmdline"`
	Settings refvalues.LockSettings `json:"settings"`
}

// SBOMRef names an SBOM and its format.
type SBOMRef struct {
	FileRef
	Format string `json:"format"`
}

func subjectRef(subjects []Subject, rel string) *FileRef {
	for _, s := range subjects {
		if s.Name == rel {
			return &FileRef{Path: rel, SHA256: s.Digest["sha256"]}
		}
	}
	return nil
}

// BuildReferenceValues assembles the reference-values predicate from a
// release folder whose files are subjects. Every part is optional but at
// least one measurement or GPU reference must be present: a statement
// without values would be signed but say nothing.
func BuildReferenceValues(dir string, subjects []Subject) (*ReferenceValues, error) {
	rv := &ReferenceValues{Measurements: map[string]json.RawMessage{}}
	var lock refvalues.Lock
	ok, err := refvalues.ReadJSON(dir, refvalues.LockPath, &lock)
	if err != nil {
		return nil, err
	}
	if ok {
		rv.Release = lock.Release
		rv.Image = &ImageValues{Lock: *subjectRef(subjects, refvalues.LockPath), Verity: lock.Verity, Cmdline: lock.Cmdline, Settings: lock.Settings}
	}
	// measurements/snp.json, tdx.json, or one per configuration
	// (snp-NAME.json, tdx-NAME.json, as cvmkit release writes them).
	for _, s := range subjects {
		name, ok := refvalues.MeasurementName(s.Name)
		if !ok {
			continue
		}
		var raw json.RawMessage
		if _, err := refvalues.ReadJSON(dir, s.Name, &raw); err != nil {
			return nil, err
		}
		rv.Measurements[name] = raw
	}
	var gpu json.RawMessage
	if ok, err := refvalues.ReadJSON(dir, refvalues.GPUPath, &gpu); err != nil {
		return nil, err
	} else if ok {
		rv.GPU = gpu
	}
	if len(rv.Measurements) == 0 && rv.GPU == nil {
		return nil, fmt.Errorf("%s holds no measurements (measurements/snp*.json, tdx*.json) and no GPU reference (%s): nothing to sign as reference values", dir, refvalues.GPUPath)
	}
	if len(rv.Measurements) == 0 {
		rv.Measurements = nil
	}
	rv.Model = subjectRef(subjects, refvalues.ModelManifest)
	for _, s := range []struct{ path, format string }{{refvalues.SBOMSPDXPath, "spdx-2.3"}, {refvalues.SBOMCycloneDX, "cyclonedx-1.6"}} {
		if r := subjectRef(subjects, s.path); r != nil {
			rv.SBOMs = append(rv.SBOMs, SBOMRef{FileRef: *r, Format: s.format})
		}
	}
	if rv.Release == "" {
		rv.Release = filepath.Base(filepath.Clean(dir))
	}
	return rv, nil
}

// Provenance is a SLSA provenance v1 predicate
// (https://slsa.dev/spec/v1.0/provenance) for the image build.
type Provenance struct {
	BuildDefinition struct {
		BuildType            string          `json:"buildType"`
		ExternalParameters   json.RawMessage `json:"externalParameters"`
		ResolvedDependencies []Dependency    `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version"`
		} `json:"builder"`
	} `json:"runDetails"`
}

// Dependency is a SLSA ResourceDescriptor for an input of the build.
type Dependency struct {
	Name   string            `json:"name"`
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest"`
}

// BuildProvenance makes the SLSA provenance of the image from its lock
// file: every pinned input with its digest, the build settings and the
// cvmkit version that built it. It holds no time or host detail, so the
// same build gives the same provenance.
func BuildProvenance(dir string) (*Provenance, error) {
	var lock refvalues.Lock
	ok, err := refvalues.ReadJSON(dir, refvalues.LockPath, &lock)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s has no %s: provenance describes the image build", dir, refvalues.LockPath)
	}
	p := &Provenance{}
	p.BuildDefinition.BuildType = cvmkitBuildType
	params := map[string]any{"release": lock.Release, "settings": lock.Settings, "lockSchema": lock.Schema}
	ext, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	p.BuildDefinition.ExternalParameters = ext
	p.BuildDefinition.ResolvedDependencies = []Dependency{}
	for _, in := range lock.Inputs {
		algo, hexd, found := strings.Cut(in.Digest, ":")
		if !found {
			return nil, fmt.Errorf("%s: input %s has digest %q without an algorithm", refvalues.LockPath, in.Key, in.Digest)
		}
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies,
			Dependency{Name: in.Key, URI: in.Source, Digest: map[string]string{algo: hexd}})
	}
	sort.SliceStable(p.BuildDefinition.ResolvedDependencies, func(i, j int) bool {
		return p.BuildDefinition.ResolvedDependencies[i].Name < p.BuildDefinition.ResolvedDependencies[j].Name
	})
	p.RunDetails.Builder.ID = cvmkitBuilderID
	p.RunDetails.Builder.Version = map[string]string{"cvmkit": lock.Cvmkit}
	return p, nil
}

// NewStatement wraps a predicate into a statement over subjects.
func NewStatement(subjects []Subject, predicateType string, predicate any) (*Statement, error) {
	raw, err := json.Marshal(predicate)
	if err != nil {
		return nil, err
	}
	subs := append([]Subject(nil), subjects...)
	return &Statement{Type: StatementType, Subject: subs, PredicateType: predicateType, Predicate: raw}, nil
}
