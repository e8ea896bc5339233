package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse: no input may panic the loader or make it accept a config that
// fails its own invariants.
func FuzzParse(f *testing.F) {
	seeds := []string{minimal, "", "a: [", "kind: Release\n", minimal + "x: &a [*a]\n", "~", "null", "&a", "&00", "- a"}
	if b, err := os.ReadFile(filepath.Join("..", "examples", "quickstart", "cvmkit.yaml")); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic("Parse took over 10s: a hang")
			}
		}()
		c, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if c.APIVersion != APIVersion || c.Kind != Kind || c.Output == "" {
			t.Fatalf("accepted an invalid config: %+v", c.Release)
		}
	})
}
