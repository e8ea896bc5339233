package refvalues

import (
	"fmt"
	"strconv"
	"strings"
)

// Release-folder paths (docs/release.md). Paths are slash-separated and
// relative to the release folder.
const (
	ImageDir        = "image"
	LockPath        = "image/image.lock.json"
	SNPPath         = "measurements/snp.json"
	TDXPath         = "measurements/tdx.json"
	MeasurementsDir = "measurements"
	GPUPath         = "gpu/gpu-reference.json"
	ModelDir        = "model"
	ModelManifest   = "model/model.manifest.json"
	KeyIndexPath    = "model/keys/index.json"
	// ModelArtifactPath records the encrypted weights' OCI artifact, when
	// the config asks for one (model.oci): its manifest digest, and where
	// release pushed it.
	ModelArtifactPath = "model/oci.json"
	SBOMSPDXPath      = "sbom/sbom.spdx.json"
	SBOMCycloneDX     = "sbom/sbom.cdx.json"
	LaunchDir         = "launch"
	// InputsConfig and InputsManifest are the release's own config (as
	// the release engineer wrote it; it holds paths, never keys) and the
	// manifest of every input it names, so that an auditor can rebuild
	// the release from it alone (cvmkit verify --inputs).
	InputsConfig    = "inputs/cvmkit.yaml"
	InputsManifest  = "inputs/inputs.json"
	KeyAuthorityDir = "key-authority"
	AttestationsDir = "attestations"
	// BindingsFile is written beside every key authority's policies.
	BindingsFile = "bindings.json"
)

// SNPDocPath is the measurement document of the release config's
// platforms.snp entry name.
func SNPDocPath(name string) string { return MeasurementsDir + "/snp-" + name + ".json" }

// TDXDocPath is the measurement document of platforms.tdx entry name for
// vcpus; a configuration measured for several vCPU counts gets one document
// per count.
func TDXDocPath(name string, vcpus int, several bool) string {
	if several {
		return fmt.Sprintf("%s/tdx-%s-%dvcpu.json", MeasurementsDir, name, vcpus)
	}
	return MeasurementsDir + "/tdx-" + name + ".json"
}

// LaunchPath is the launch recipe of a measured configuration.
func LaunchPath(configuration string) string { return LaunchDir + "/" + configuration + ".json" }

// KeyAuthorityPath is a key authority target's file.
func KeyAuthorityPath(target, file string) string {
	return KeyAuthorityDir + "/" + target + "/" + file
}

// ImagePath is an image output's path in the release.
func ImagePath(name string) string { return ImageDir + "/" + name }

// MeasurementName returns the predicate key of a measurement document path
// (measurements/snp.json → "snp", measurements/snp-qemu.json → "snp-qemu")
// and whether the path is one.
func MeasurementName(rel string) (string, bool) {
	name, ok := strings.CutPrefix(rel, MeasurementsDir+"/")
	if !ok || strings.Contains(name, "/") || !strings.HasSuffix(name, ".json") {
		return "", false
	}
	name = strings.TrimSuffix(name, ".json")
	return name, MeasurementPlatform(name) != ""
}

// MeasurementPlatform is "snp" or "tdx" for a measurement key, else "".
func MeasurementPlatform(name string) string {
	for _, p := range []string{"snp", "tdx"} {
		if name == p || strings.HasPrefix(name, p+"-") {
			return p
		}
	}
	return ""
}

// DisplayPath is a file name as shown to a person in text output and
// error messages: quoted (Go syntax) when it holds anything but printable
// characters, so that a name with a newline cannot forge a line of output.
func DisplayPath(name string) string {
	for _, r := range name {
		if !strconv.IsPrint(r) {
			return strconv.Quote(name)
		}
	}
	return name
}
