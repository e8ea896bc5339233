package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/sign"
)

// TestInventorySubjects: the subjects carried forward equal what hashing
// the folder gives (sign.Subjects), and a file no stage recorded, or one
// whose size changed, is refused instead of being signed unseen.
func TestInventorySubjects(t *testing.T) {
	dir := t.TempDir()
	inv := NewInventory()
	if err := inv.WriteFile(dir, "image/vmlinuz", []byte("kernel")); err != nil {
		t.Fatal(err)
	}
	if err := inv.WriteDoc(dir, "measurements/snp-x.json", map[string]string{"a": "<b>"}); err != nil {
		t.Fatal(err)
	}
	got, err := inv.Subjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := sign.Subjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("subjects %v, hashed %v", got, want)
	}
	for i := range got {
		if got[i].Name != want[i].Name || got[i].Digest["sha256"] != want[i].Digest["sha256"] {
			t.Errorf("subject %d: carried %v, hashed %v", i, got[i], want[i])
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "measurements", "snp-x.json")); !strings.Contains(string(b), "<b>") {
		t.Errorf("documents are written without HTML escaping: %s", b)
	}
	if err := os.WriteFile(filepath.Join(dir, "image", "extra"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Subjects(dir); err == nil || !strings.Contains(err.Error(), "image/extra was written but no stage recorded it") {
		t.Errorf("unrecorded file: %v", err)
	}
	os.Remove(filepath.Join(dir, "image", "extra"))
	if err := os.WriteFile(filepath.Join(dir, "image", "vmlinuz"), []byte("kernel2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Subjects(dir); err == nil || !strings.Contains(err.Error(), "recorded as 6") {
		t.Errorf("changed file: %v", err)
	}
}
