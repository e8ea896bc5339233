package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Kind says what a [Part] of the boot chain is; it decides the part's SPDX
// primaryPackagePurpose and CycloneDX component type.
type Kind string

const (
	// Kernel is the guest kernel image (bzImage or UKI).
	Kernel Kind = "kernel"
	// Initrd is the initial RAM disk; its Parts are the programs and kernel
	// modules found inside it.
	Initrd Kind = "initrd"
	// Firmware is a firmware image (OVMF.fd, OVMF_CODE.fd).
	Firmware Kind = "firmware"
	// FirmwareVars is a firmware variable store template (OVMF_VARS.fd).
	FirmwareVars Kind = "firmware-vars"
	// Program is an executable found inside the initrd.
	Program Kind = "program"
	// Library is a shared library found inside the initrd.
	Library Kind = "library"
	// Module is a Linux kernel module found inside the initrd.
	Module Kind = "kernel-module"
)

// purposes maps a kind to SPDX 2.3 §7.24 primaryPackagePurpose (as the
// SPDX JSON schema spells it: OPERATING_SYSTEM, not the tag-value form) and a
// CycloneDX 1.6 component type.
var purposes = map[Kind]struct{ spdx, cdx string }{
	Kernel:       {"OPERATING_SYSTEM", "operating-system"},
	Initrd:       {"ARCHIVE", "file"},
	Firmware:     {"FIRMWARE", "firmware"},
	FirmwareVars: {"FIRMWARE", "data"},
	Program:      {"APPLICATION", "application"},
	Library:      {"LIBRARY", "library"},
	Module:       {"LIBRARY", "library"},
}

// Part is one piece of the guest's boot chain that is not in the root
// filesystem: the kernel, the initrd (and what it holds) and the firmware.
// Syft never sees these, yet they are what the launch measurement binds,
// so the SBOM lists them beside the root filesystem's packages.
type Part struct {
	Kind Kind
	// Name and Version identify the part: for the kernel "linux" and its
	// release (uname -r); for a Go program its main package path and
	// module version; for a module its modinfo name and the kernel release
	// it was built for (vermagic); for firmware the config's name.
	Name, Version string
	// File is where the part is: its file name in the image folder, or its
	// path inside the initrd.
	File string
	// Description says in a sentence what the part is and how it was
	// identified.
	Description string
	// SHA256 is the hex SHA-256 of the part's bytes as they are shipped
	// (for a compressed module, the compressed file).
	SHA256 string
	Size   int64
	// PURL is a package URL where one is known (Go modules).
	PURL string
	// Parts are the parts found inside this one (an initrd's contents).
	Parts []Part
}

// FilePart describes a file by kind, name and digest, reading r once.
func FilePart(kind Kind, name, file string, r io.Reader) (Part, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return Part{}, fmt.Errorf("reading %s: %w", file, err)
	}
	return Part{Kind: kind, Name: name, File: file, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// KernelPart describes a kernel image whose setup header's kernel_version
// string is version (as `file` shows it: "6.1.0-28-amd64 (builder@host)
// #1 SMP … Debian 6.1.119-1 (2024-11-22)"). The part's version is the
// release, the string's first word; the rest stays in the description,
// since distributions put their package version there.
func KernelPart(file string, data []byte, version string, uki bool) Part {
	sum := sha256.Sum256(data)
	release, _, _ := strings.Cut(strings.TrimSpace(version), " ")
	what := "Linux kernel (bzImage)"
	if uki {
		what = "Linux unified kernel image (UKI)"
	}
	return Part{
		Kind: Kernel, Name: "linux", Version: release, File: file,
		Description: fmt.Sprintf("%s; setup header kernel_version %q", what, version),
		SHA256:      hex.EncodeToString(sum[:]), Size: int64(len(data)),
	}
}

// spdxIDUnsafe is what SPDX 2.3 §3.2 does not allow in an SPDX identifier
// (letters, digits, '.' and '-' only).
var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// partID is a document-unique, stable identifier of a part: its kind, its
// file and the first bytes of its digest (two parts of the same name, such
// as two firmware files, stay apart).
func partID(p Part) string {
	s := string(p.Kind) + "-" + strings.Trim(p.File, "/") + "-" + p.SHA256[:min(16, len(p.SHA256))]
	return spdxIDUnsafe.ReplaceAllString(s, "-")
}

// addSPDXParts adds the parts as SPDX 2.3 packages: the document DESCRIBES
// each top-level part, and a part CONTAINS the parts found inside it.
func addSPDXParts(m map[string]any, parts []Part) {
	if len(parts) == 0 {
		return
	}
	pkgs, _ := m["packages"].([]any)
	rels, _ := m["relationships"].([]any)
	var add func(parent string, ps []Part)
	add = func(parent string, ps []Part) {
		for _, p := range ps {
			id := "SPDXRef-Boot-" + partID(p)
			pkg := map[string]any{
				"SPDXID":                id,
				"name":                  p.Name,
				"packageFileName":       p.File,
				"downloadLocation":      "NOASSERTION",
				"filesAnalyzed":         false,
				"licenseConcluded":      "NOASSERTION",
				"licenseDeclared":       "NOASSERTION",
				"copyrightText":         "NOASSERTION",
				"supplier":              "NOASSERTION",
				"primaryPackagePurpose": purposes[p.Kind].spdx,
				"checksums":             []any{map[string]any{"algorithm": "SHA256", "checksumValue": p.SHA256}},
			}
			if p.Version != "" {
				pkg["versionInfo"] = p.Version
			}
			if p.Description != "" {
				pkg["description"] = p.Description
			}
			if p.PURL != "" {
				pkg["externalRefs"] = []any{map[string]any{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.PURL}}
			}
			pkgs = append(pkgs, pkg)
			rel := "CONTAINS"
			if parent == "SPDXRef-DOCUMENT" {
				rel = "DESCRIBES"
			}
			rels = append(rels, map[string]any{"spdxElementId": parent, "relationshipType": rel, "relatedSpdxElement": id})
			add(id, p.Parts)
		}
	}
	add("SPDXRef-DOCUMENT", parts)
	m["packages"], m["relationships"] = pkgs, rels
}

// addCycloneDXParts adds the parts as CycloneDX 1.6 components; an initrd's
// contents are its nested components (an assembly, CycloneDX §components).
func addCycloneDXParts(m map[string]any, parts []Part) {
	if len(parts) == 0 {
		return
	}
	comps, _ := m["components"].([]any)
	m["components"] = append(comps, cycloneDXParts(parts)...)
}

func cycloneDXParts(parts []Part) []any {
	var out []any
	for _, p := range parts {
		c := map[string]any{
			"bom-ref": "boot:" + partID(p),
			"type":    purposes[p.Kind].cdx,
			"name":    p.Name,
			"hashes":  []any{map[string]any{"alg": "SHA-256", "content": p.SHA256}},
			"properties": []any{
				map[string]any{"name": "cvmkit:boot:kind", "value": string(p.Kind)},
				map[string]any{"name": "cvmkit:boot:file", "value": p.File},
				map[string]any{"name": "cvmkit:boot:size", "value": fmt.Sprint(p.Size)},
			},
		}
		if p.Version != "" {
			c["version"] = p.Version
		}
		if p.Description != "" {
			c["description"] = p.Description
		}
		if p.PURL != "" {
			c["purl"] = p.PURL
		}
		if len(p.Parts) > 0 {
			c["components"] = cycloneDXParts(p.Parts)
		}
		out = append(out, c)
	}
	return out
}
