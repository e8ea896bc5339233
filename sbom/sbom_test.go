package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anchore/syft/syft/format"
	"github.com/cvmkit/cvmkit/internal/testenv"
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
