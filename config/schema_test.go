package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// TestSchemaAcceptsWhatLoadAccepts checks the published schema with an
// independent JSON Schema implementation: it is a valid draft 2020-12
// schema, it accepts the quickstart config, and it rejects an unknown key
// and a malformed digest as Load does.
func TestSchemaAcceptsWhatLoadAccepts(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	comp := jsonschema.NewCompiler()
	if err := comp.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := comp.Compile(SchemaID)
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "quickstart", "cvmkit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, src string, wantOK bool) {
		t.Helper()
		var v any
		if err := yaml.Unmarshal([]byte(src), &v); err != nil {
			t.Fatal(err)
		}
		err := sch.Validate(v)
		if (err == nil) != wantOK {
			t.Errorf("%s: schema validation error = %v, want ok=%v", name, err, wantOK)
		}
		_, lerr := Parse("x.yaml", []byte(src))
		if (lerr == nil) != wantOK {
			t.Errorf("%s: Load error = %v, want ok=%v", name, lerr, wantOK)
		}
	}
	check("quickstart", string(data), true)
	check("minimal", minimal, true)
	check("unknown key", string(data)+"extra: 1\n", false)
	check("bad digest", strings.Replace(minimal, zeroHex, "xyz", 1), false)
	check("bad enum", minimal+"sbom:\n  formats: [spdx]\n", false)
}
