package firmware

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/outcome"
)

// TestRecipeDigest: the cache key changes with anything that changes the
// bytes, and not with the expected output digest.
func TestRecipeDigest(t *testing.T) {
	r := Recipes["amdsev"]
	d := r.Digest()
	if len(d) != 64 || d != r.Digest() {
		t.Fatalf("digest %q", d)
	}
	r2 := r
	r2.SHA256 = "00"
	if r2.Digest() != d {
		t.Fatal("the expected output digest changed the cache key")
	}
	r2.Flags = append(append([]string(nil), r.Flags...), "-DX=1")
	if r2.Digest() == d {
		t.Fatal("another flag kept the cache key")
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "amdsev") {
		t.Fatalf("unknown recipe: %v", err)
	}
}

// TestToolchainRefused: a missing package is named with what to install; a
// package at another version is named with both versions; nothing is
// built.
func TestToolchainRefused(t *testing.T) {
	r := Recipes["amdsev"]
	versions := map[string]string{}
	for _, p := range r.Toolchain {
		versions[p.Name] = p.Version
	}
	versions["nasm"] = ""
	versions["gcc-12"] = "14.2.0-19"
	_, err := Build(context.Background(), r, Options{CacheDir: t.TempDir(), Installed: func(n string) (string, error) { return versions[n], nil }})
	if !errors.Is(err, ErrToolchain) || outcome.ExitCode(err) != outcome.Input {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{"nasm is not installed", "gcc-12 is 14.2.0-19, the recipe needs 12.2.0-14+deb12u1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not in %v", want, err)
		}
	}
	if h := outcome.Hints(err); len(h) == 0 || !strings.Contains(h[0], "apt-get install nasm") {
		t.Errorf("hints %v", h)
	}
}

// TestSourceDigestChecked: a fetched tarball whose digest is not the
// pinned one is refused and not kept.
func TestSourceDigestChecked(t *testing.T) {
	r := Recipes["amdsev"]
	installed := func(n string) (string, error) {
		for _, p := range r.Toolchain {
			if p.Name == n {
				return p.Version, nil
			}
		}
		return "", nil
	}
	cache := t.TempDir()
	_, err := Build(context.Background(), r, Options{CacheDir: cache, Installed: installed,
		Fetch: func(ctx context.Context, s Source, dst string) error {
			return os.WriteFile(dst, []byte("not edk2"), 0o644)
		}})
	if err == nil || !strings.Contains(err.Error(), "the recipe pins "+r.Sources[0].SHA256) {
		t.Fatalf("%v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "*")); len(m) != 0 {
		t.Fatalf("kept %v", m)
	}
}
