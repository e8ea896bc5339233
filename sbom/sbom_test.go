package sbom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anchore/syft/syft/format"
	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// dpkgStatus is a Debian package database excerpt (the format dpkg writes
// to /var/lib/dpkg/status).
const dpkgStatus = `Package: base-files
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u11
Description: Debian base system miscellaneous files

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12991
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Description: GNU C Library: Shared libraries

Package: busybox-static
Status: install ok installed
Priority: optional
Section: shells
Installed-Size: 2076
Maintainer: Debian Install System Team <debian-boot@lists.debian.org>
Architecture: amd64
Source: busybox
Version: 1:1.35.0-4+b3
Description: Standalone rescue shell with tons of builtin utilities

`

const osRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`

func debianRoot(t *testing.T, dir string) {
	t.Helper()
	for rel, body := range map[string]string{
		"var/lib/dpkg/status":        dpkgStatus,
		"etc/os-release":             osRelease,
		"usr/share/doc/libc6/README": "libc",
	} {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var opts = Options{Name: "demo", Version: "1.0.0", Epoch: time.Unix(1764201600, 0), Tool: "test"}

// TestReproducibleAndDpkg catalogues the same Debian root filesystem at
// two different paths (and with a different TZ) and requires byte-identical
// SBOMs that list the dpkg packages, readable by syft's own decoders.
func TestReproducibleAndDpkg(t *testing.T) {
	a := filepath.Join(t.TempDir(), "one")
	b := filepath.Join(t.TempDir(), "some", "other", "root")
	debianRoot(t, a)
	debianRoot(t, b)
	da, err := FromDir(context.Background(), a, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TZ", "America/Los_Angeles")
	db, err := FromDir(context.Background(), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da.SPDX, db.SPDX) || !bytes.Equal(da.CycloneDX, db.CycloneDX) {
		t.Fatal("the same root filesystem gave different SBOMs")
	}
	for _, doc := range [][]byte{da.SPDX, da.CycloneDX} {
		if bytes.Contains(doc, []byte(a)) || bytes.Contains(doc, []byte(os.TempDir())) {
			t.Fatal("an SBOM names a host path")
		}
		if !bytes.Contains(doc, []byte("2025-11-27T00:00:00Z")) {
			t.Fatal("an SBOM does not carry SOURCE_DATE_EPOCH as its time")
		}
	}
	// syft's decoders read both back, with the dpkg packages.
	for name, doc := range map[string][]byte{"spdx": da.SPDX, "cyclonedx": da.CycloneDX} {
		s, id, version, err := format.Decode(bytes.NewReader(doc))
		if err != nil || s == nil {
			t.Fatalf("%s: syft cannot decode it: %v", name, err)
		}
		var got []string
		for p := range s.Artifacts.Packages.Enumerate() {
			got = append(got, p.Name+"@"+p.Version)
		}
		sort.Strings(got)
		want := []string{"base-files@12.4+deb12u11", "busybox-static@1:1.35.0-4+b3", "libc6@2.36-9+deb12u10"}
		for _, w := range want {
			if !contains(got, w) {
				t.Fatalf("%s (%s %s): %s not among %v", name, id, version, w, got)
			}
		}
	}
	var spdx struct {
		SPDXVersion       string `json:"spdxVersion"`
		DocumentNamespace string `json:"documentNamespace"`
	}
	var cdx struct {
		SpecVersion  string `json:"specVersion"`
		SerialNumber string `json:"serialNumber"`
	}
	if json.Unmarshal(da.SPDX, &spdx) != nil || spdx.SPDXVersion != "SPDX-2.3" || !strings.HasPrefix(spdx.DocumentNamespace, Namespace+"demo-") {
		t.Fatalf("SPDX header %+v", spdx)
	}
	if json.Unmarshal(da.CycloneDX, &cdx) != nil || cdx.SpecVersion != "1.6" || !strings.HasPrefix(cdx.SerialNumber, "urn:uuid:") {
		t.Fatalf("CycloneDX header %+v", cdx)
	}

	// Different content, different namespace and serial.
	if err := os.WriteFile(filepath.Join(b, "etc", "hostname"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "var/lib/dpkg/status"), []byte(strings.Replace(dpkgStatus, "2.36-9+deb12u10", "2.36-9+deb12u11", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	dc, err := FromDir(context.Background(), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dc.SPDX, da.SPDX) {
		t.Fatal("a changed package version did not change the SBOM")
	}
}

// TestFromEROFS: an EROFS image made by mkfs.erofs (with bytes appended, as
// the dm-verity tree is) gives the same SBOMs as its source folder.
func TestFromEROFS(t *testing.T) {
	mkfs := testenv.Tool(t, "mkfs.erofs", "apt-get install erofs-utils")
	dir := filepath.Join(t.TempDir(), "root")
	debianRoot(t, dir)
	if err := os.Symlink("../usr/share/doc", filepath.Join(dir, "etc", "doc")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "rootfs.img")
	if out, err := exec.Command(mkfs, img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	f, err := os.OpenFile(img, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 8192))
	f.Close()
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fromImage, err := FromEROFS(context.Background(), r, opts)
	if err != nil {
		t.Fatal(err)
	}
	fromDir, err := FromDir(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromImage.SPDX, fromDir.SPDX) || fromImage.Packages < 3 {
		t.Fatalf("EROFS and folder SBOMs differ (%d packages)", fromImage.Packages)
	}
	if _, err := FromEROFS(context.Background(), bytes.NewReader(make([]byte, 4096)), opts); err == nil {
		t.Fatal("zeros accepted as EROFS")
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// bootParts are a kernel, an initrd holding a program and a module, and a
// firmware image, as cvmkit-sbom describes them.
func bootParts() []Part {
	hexOf := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	return []Part{
		KernelPart("vmlinuz", []byte("kernel bytes"), "6.12.9-amd64 (builder@host) #1 SMP PREEMPT_DYNAMIC Debian 6.12.9-1", false),
		{Kind: Initrd, Name: "initrd.img", File: "initrd.img", SHA256: hexOf("initrd"), Size: 6, Description: "initial RAM disk (zstd)", Parts: []Part{
			{Kind: Program, Name: "github.com/cvmkit/cvmkit/cmd/cvmkit-init", Version: "v1.2.0", File: "/init", SHA256: hexOf("init"), Size: 4, PURL: "pkg:golang/github.com/cvmkit/cvmkit@v1.2.0"},
			{Kind: Module, Name: "dm_verity", Version: "6.12.9-amd64", File: "/lib/modules/dm-verity.ko", SHA256: hexOf("dm"), Size: 2},
		}},
		{Kind: Firmware, Name: "debian-trixie", File: "OVMF.fd", SHA256: hexOf("ovmf"), Size: 4},
	}
}

// TestBootParts: the kernel, the initrd's contents and the firmware appear
// beside the root filesystem's packages in both documents, which still
// validate against the SPDX 2.3 and CycloneDX 1.6 JSON schemas (as
// published in the syft and cyclonedx-go modules) and decode with syft; the
// creators are cvmkit and syft with their versions.
func TestBootParts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "root")
	debianRoot(t, dir)
	o := opts
	o.Tool = "v9.8.7"
	o.Parts = bootParts()
	d, err := FromDir(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, "spdx", d.SPDX, moduleFile(t, "github.com/anchore/syft", "schema/spdx-json/spdx-schema-2.3.json"), nil)
	cdxDir := moduleFile(t, "github.com/CycloneDX/cyclonedx-go", "schema")
	validate(t, "cyclonedx", d.CycloneDX, filepath.Join(cdxDir, "bom-1.6.schema.json"), map[string]string{
		"http://cyclonedx.org/schema/spdx.schema.json":     filepath.Join(cdxDir, "spdx.schema.json"),
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": filepath.Join(cdxDir, "jsf-0.82.schemax.json"),
	})

	var spdx struct {
		CreationInfo struct{ Creators []string } `json:"creationInfo"`
		Packages     []struct {
			SPDXID, Name, VersionInfo, PrimaryPackagePurpose string
			Checksums                                        []struct{ Algorithm, ChecksumValue string }
		}
		Relationships []struct{ SpdxElementID, RelationshipType, RelatedSpdxElement string }
	}
	if err := json.Unmarshal(d.SPDX, &spdx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(spdx.CreationInfo.Creators, ", "); got != "Tool: cvmkit-v9.8.7, Tool: syft-"+syftVersion() {
		t.Errorf("SPDX creators %q", got)
	}
	ids := map[string]string{}
	for _, p := range spdx.Packages {
		ids[p.Name] = p.SPDXID
		if p.Name == "linux" && (p.VersionInfo != "6.12.9-amd64" || p.PrimaryPackagePurpose != "OPERATING_SYSTEM" || p.Checksums[0].ChecksumValue != o.Parts[0].SHA256) {
			t.Errorf("kernel package %+v", p)
		}
	}
	rel := map[string]bool{}
	for _, r := range spdx.Relationships {
		rel[r.SpdxElementID+" "+r.RelationshipType+" "+r.RelatedSpdxElement] = true
	}
	for _, want := range []string{
		"SPDXRef-DOCUMENT DESCRIBES " + ids["linux"],
		"SPDXRef-DOCUMENT DESCRIBES " + ids["debian-trixie"],
		ids["initrd.img"] + " CONTAINS " + ids["github.com/cvmkit/cvmkit/cmd/cvmkit-init"],
		ids["initrd.img"] + " CONTAINS " + ids["dm_verity"],
	} {
		if !rel[want] {
			t.Errorf("SPDX relationship %q missing", want)
		}
	}

	var cdx struct {
		Metadata struct {
			Tools struct {
				Components []struct{ Name, Version, Author string }
			}
		}
		Components []struct {
			Type, Name, Version string
			Hashes              []struct{ Alg, Content string }
			Components          []struct{ Type, Name, Version, Purl string }
		}
	}
	if err := json.Unmarshal(d.CycloneDX, &cdx); err != nil {
		t.Fatal(err)
	}
	if tc := cdx.Metadata.Tools.Components; len(tc) != 2 || tc[0].Name != "cvmkit" || tc[0].Version != "v9.8.7" || tc[0].Author != "" || tc[1].Name != "syft" {
		t.Errorf("CycloneDX tools %+v", tc)
	}
	found := map[string]bool{}
	for _, c := range cdx.Components {
		found[c.Type+" "+c.Name] = true
		if c.Name == "initrd.img" && (len(c.Components) != 2 || c.Components[0].Purl != "pkg:golang/github.com/cvmkit/cvmkit@v1.2.0" || c.Components[1].Type != "library") {
			t.Errorf("initrd component %+v", c)
		}
	}
	for _, w := range []string{"operating-system linux", "file initrd.img", "firmware debian-trixie"} {
		if !found[w] {
			t.Errorf("CycloneDX component %q missing", w)
		}
	}
	// syft still reads both, root filesystem packages and all.
	for name, doc := range map[string][]byte{"spdx": d.SPDX, "cyclonedx": d.CycloneDX} {
		s, _, _, err := format.Decode(bytes.NewReader(doc))
		if err != nil || s == nil || s.Artifacts.Packages.PackageCount() < 3 {
			t.Fatalf("%s: syft cannot decode it: %v", name, err)
		}
	}
	// The parts are part of the content: a different firmware, a different
	// namespace.
	o.Parts[2].SHA256 = strings.Repeat("0", 64)
	d2, err := FromDir(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(d.SPDX, d2.SPDX) || bytes.Equal(d.CycloneDX, d2.CycloneDX) {
		t.Fatal("a changed firmware digest did not change the documents")
	}
}

// moduleFile is a file of a module in the build list, read in place.
func moduleFile(t *testing.T, mod, rel string) string {
	return filepath.Join(testenv.ModuleDir(t, mod), filepath.FromSlash(rel))
}

// validate checks doc against the JSON schema at path; refs maps schema
// URLs to local files.
func validate(t *testing.T, name string, doc []byte, path string, refs map[string]string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	add := func(url, file string) {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		s, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(url, s); err != nil {
			t.Fatal(err)
		}
	}
	for url, file := range refs {
		add(url, file)
	}
	add("file:///"+name+".schema.json", path)
	sch, err := c.Compile("file:///" + name + ".schema.json")
	if err != nil {
		t.Fatalf("%s schema: %v", name, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("%s document does not validate against %s: %v", name, path, err)
	}
}

// mitText is the MIT licence as a copyright file gives it in free text (no
// machine-readable "License:" field), so that syft's full-text scanner
// concludes it.
const mitText = `Copyright (c) 2025 The Authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`

// TestLicenseScannerStartedAhead: the scanner built ahead of cataloguing
// (StartLicenseScanner, as cvmkit-sbom does while it reads the image) gives
// the same documents as the one syft builds itself, and full-text licence
// detection still concludes a free-text copyright file's licence.
func TestLicenseScannerStartedAhead(t *testing.T) {
	root := t.TempDir()
	debianRoot(t, root)
	p := filepath.Join(root, "usr/share/doc/base-files/copyright")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(mitText), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	own, err := FromDir(ctx, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	o := opts
	o.Licenses = StartLicenseScanner(ctx)
	ahead, err := FromDir(ctx, root, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(own.SPDX, ahead.SPDX) || !bytes.Equal(own.CycloneDX, ahead.CycloneDX) {
		t.Fatal("the scanner started ahead gave other SBOMs than syft's own")
	}
	if !bytes.Contains(ahead.SPDX, []byte(`"licenseConcluded": "MIT"`)) {
		t.Fatalf("the free-text MIT copyright file was not concluded MIT:\n%s", ahead.SPDX)
	}
}

// TestLicenseScannerCancelled: cataloguing stops when the context ends
// while the scanner is still being built.
func TestLicenseScannerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l := StartLicenseScanner(context.Background())
	cancel()
	o := opts
	o.Licenses = l
	if _, err := FromDir(ctx, t.TempDir(), o); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
