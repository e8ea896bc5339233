package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite docs/cvmkit.schema.json")

// minimal is the smallest valid config; cases below edit it.
const minimal = `apiVersion: cvmkit.dev/v1alpha1
kind: Release
metadata:
  name: demo
  version: 1.0.0
image:
  kernel:
    path: vmlinuz
    digest: sha256:` + zeroHex + `
  cmdline: "console=ttyS0 {{.Root}}"
`

const zeroHex = "0000000000000000000000000000000000000000000000000000000000000000"

func TestParseMinimal(t *testing.T) {
	c, err := Parse("dir/cvmkit.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Name != "demo" || c.Image.Kernel.Path != "vmlinuz" {
		t.Errorf("decoded %+v", c.Release)
	}
	// Defaults.
	if c.Output != "dist" || c.Image.Initrd.Init.Target != "/sbin/init" || c.Image.Initrd.Init.Compression != "zstd" ||
		c.Image.RootFS.Verity != "appended" || len(c.SBOM.Formats) != 2 {
		t.Errorf("defaults not applied: %+v", c.Release)
	}
	if got := c.Resolve("vmlinuz"); got != filepath.Join("dir", "vmlinuz") {
		t.Errorf("Resolve = %q", got)
	}
	if got := c.Resolve("/abs/x"); got != "/abs/x" {
		t.Errorf("Resolve(abs) = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		// want is "line:col: path: message substring"; hint a substring of the hint.
		want, hint string
	}{
		{"unknown key", func(s string) string { return s + "outptu: x\n" }, `11:1: outptu: unknown key "outptu" in the top level`, `did you mean "output"?`},
		{"unknown nested key", func(s string) string { return strings.Replace(s, "    path: vmlinuz", "    pth: vmlinuz", 1) }, `8:5: image.kernel.pth: unknown key "pth" in image.kernel`, `did you mean "path"?`},
		{"unknown key far from any", func(s string) string { return s + "zzzzzzzzzz: 1\n" }, `unknown key "zzzzzzzzzz"`, "valid keys here: apiVersion,"},
		{"short digest", func(s string) string { return strings.Replace(s, zeroHex, "abc", 1) }, `9:13: image.kernel.digest: malformed digest "sha256:abc"`, `it has 3 characters after "sha256:", not 64`},
		{"digest without algorithm", func(s string) string { return strings.Replace(s, "sha256:"+zeroHex, zeroHex, 1) }, `9:13: image.kernel.digest: malformed digest`, "add the algorithm: digest: sha256:" + zeroHex},
		{"uppercase digest", func(s string) string { return strings.Replace(s, zeroHex, strings.Repeat("AB", 32), 1) }, `malformed digest`, "lowercase"},
		{"sha512 digest", func(s string) string { return strings.Replace(s, "sha256:"+zeroHex, "sha512:"+zeroHex+zeroHex, 1) }, `malformed digest "sha512:`, "sha256sum"},
		{"wrong type string for list", func(s string) string { return s + "firmware: OVMF.fd\n" }, `11:11: firmware: want a list, got a string "OVMF.fd"`, "write a YAML list"},
		{"wrong type mapping for string", func(s string) string { return strings.Replace(s, "name: demo", "name: {a: b}", 1) }, `4:9: metadata.name: want a string, got a mapping`, ""},
		{"wrong type bool", func(s string) string { return s + "keyAuthorities:\n  allowUnbound: maybe\n" }, `12:17: keyAuthorities.allowUnbound: want true or false, got a string "maybe"`, ""},
		{"wrong type int", func(s string) string { return s + "sourceDateEpoch: soon\n" }, `11:18: sourceDateEpoch: want an integer, got a string "soon"`, ""},
		{"missing required", func(s string) string { return strings.Replace(s, "  version: 1.0.0\n", "", 1) }, `4:3: metadata.version: missing required key "version"`, "cvmkit config schema"},
		{"duplicate key", func(s string) string { return strings.Replace(s, "  name: demo\n", "  name: demo\n  name: other\n", 1) }, `5:3: metadata.name: key "name" appears twice`, "keep one"},
		{"bad enum", func(s string) string { return s + "sbom:\n  formats: [spdx]\n" }, `12:13: sbom.formats[0]: unknown value "spdx"; want one of spdx-json, cyclonedx-json`, `did you mean "spdx-json"?`},
		{"bad apiVersion", func(s string) string { return strings.Replace(s, "v1alpha1", "v2", 1) }, `1:13: apiVersion: unsupported apiVersion "cvmkit.dev/v2"`, "apiVersion: cvmkit.dev/v1alpha1"},
		{"bad kind", func(s string) string { return strings.Replace(s, "kind: Release", "kind: Build", 1) }, `2:7: kind: unsupported kind "Build"`, "kind: Release"},
		{"bad name", func(s string) string { return strings.Replace(s, "name: demo", "name: My Demo", 1) }, `metadata.name: bad release name "My Demo"`, "lowercase"},
		{"unpinned oci", func(s string) string { return s + "  base:\n    - oci: debian:bookworm\n" }, `image.base[0].oci: OCI reference "debian:bookworm" is not pinned by digest`, "crane digest"},
		{"two base kinds", func(s string) string { return s + "  base:\n    - dir: a\n      oci: x@sha256:" + zeroHex + "\n" }, `image.base[0]: a base entry must have exactly one of oci, layout, dir`, ""},
		{"layout without digest", func(s string) string { return s + "  base:\n    - layout: oci\n" }, `image.base[0].layout: an OCI layout needs digest`, "index.json"},
		{"overlay escaping", func(s string) string { return s + "  overlays:\n    - src: a\n      dst: /etc/../../x\n" }, `image.overlays[0].dst: overlay destination "/etc/../../x" must be a clean absolute path`, ""},
		{"kernel unpinned", func(s string) string { return strings.Replace(s, "    digest: sha256:"+zeroHex+"\n", "", 1) }, `image.kernel.path: the kernel file is not pinned`, "sha256sum"},
		{"cmdline template", func(s string) string { return strings.Replace(s, "{{.Root}}", "{{.Rot}}", 1) }, `image.cmdline: bad command line template`, "{{.Root}}"},
		{"bad file mode", func(s string) string { return s + "  overlays:\n    - src: a\n      dst: /a\n      mode: 0999\n" }, `image.overlays[0].mode: bad file mode "0999"`, `for example mode: "0644"`},
		{"firmware reference", func(s string) string {
			return s + "firmware:\n  - name: ovmf\n    path: OVMF.fd\n    digest: sha256:" + zeroHex + "\nplatforms:\n  snp:\n    - name: a\n      firmware: ovfm\n      vcpus: [1]\n      vcpuTypes: [EPYC-v4]\n"
		}, `platforms.snp[0].firmware: no firmware named "ovfm"`, `did you mean "ovmf"?`},
		{"vcpus", func(s string) string {
			return s + "firmware:\n  - name: f\n    path: OVMF.fd\n    digest: sha256:" + zeroHex + "\nplatforms:\n  tdx:\n    - name: a\n      firmware: f\n      memory: 2G\n      vcpus: [2, 2, 0]\n"
		}, `platforms.tdx[0].vcpus[1]: vCPU count 2 is listed twice`, ""},
		{"snp without vcpu types", func(s string) string {
			return s + "firmware:\n  - name: f\n    path: OVMF.fd\n    digest: sha256:" + zeroHex + "\nplatforms:\n  snp:\n    - name: a\n      firmware: f\n      vcpus: [1]\n"
		}, `platforms.snp[0]: missing vcpuTypes`, "EPYC-v4"},
		{"tdx memory", func(s string) string {
			return s + "firmware:\n  - name: f\n    path: OVMF.fd\n    digest: sha256:" + zeroHex + "\nplatforms:\n  tdx:\n    - name: a\n      firmware: f\n      memory: 2048\n      vcpus: [1]\n"
		}, `platforms.tdx[0].memory: memory 2048 bytes is too small`, "memory: 2G"},
		{"recipient kinds", func(s string) string {
			return s + "model:\n  source: w\n  recipients:\n    - kms: gcp-kms://x\n      hpke: k.pub\n"
		}, `model.recipients[0]: a recipient must have exactly one of hpke, kms, trustee, azure (it has 2)`, ""},
		{"kms scheme", func(s string) string { return s + "model:\n  source: w\n  recipients:\n    - kms: vault://x\n" }, `model.recipients[0].kms: unsupported KMS key URI`, "gcp-kms://"},
		{"id block sizes", func(s string) string {
			return s + "firmware:\n  - name: f\n    path: OVMF.fd\n    digest: sha256:" + zeroHex + "\nplatforms:\n  snp:\n    - name: a\n      firmware: f\n      vcpus: [1]\n      vcpuTypes: [EPYC]\n      idBlock:\n        familyID: 0011\n        idKey: id.pem\n"
		}, `platforms.snp[0].idBlock.familyID: familyID has 2 bytes, want 16`, ""},
		{"not yaml", func(s string) string { return s + "  cmdline: [\n" }, `not valid YAML`, "indentation"},
		{"two documents", func(s string) string { return s + "---\nkind: Release\n" }, `more than one YAML document`, "---"},
		{"merge keys", func(s string) string { return s + "x: &a {name: b}\n" }, `unknown key "x"`, ""},
		{"empty", func(string) string { return "" }, `the file is empty`, "examples/quickstart"},
		{"scalar root", func(string) string { return "hello\n" }, `1:1: want a mapping of keys, got a string "hello"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.edit(minimal)))
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "c.yaml:") {
				t.Errorf("error %q does not start with the file name", err)
			}
			if tt.hint != "" && !strings.Contains(strings.Join(cerr.Hints(), "\n"), tt.hint) {
				t.Errorf("hints %q, want one containing %q", cerr.Hints(), tt.hint)
			}
		})
	}
}

func TestAliasBomb(t *testing.T) {
	// Each level doubles: 2^30 values if expanded naively.
	var sb strings.Builder
	sb.WriteString("a0: &a0 [x, x]\n")
	for i := 1; i <= 30; i++ {
		sb.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " [*a" + itoa(i-1) + ", *a" + itoa(i-1) + "]\n")
	}
	sb.WriteString("metadata:\n  description: *a30\n")
	_, err := Parse("bomb.yaml", []byte(sb.String()))
	if err == nil {
		t.Fatal("alias bomb accepted")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCheckInputs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
	good := "sha256:" + sha256hex("kernel")
	cfg := strings.Replace(minimal, "sha256:"+zeroHex, good, 1) + "model:\n  source: weights\n  recipients:\n    - trustee: {type: model, tag: t}\n"
	p := filepath.Join(dir, "cvmkit.yaml")
	os.WriteFile(p, []byte(cfg), 0o644)

	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckInputs()
	if err == nil || !strings.Contains(err.Error(), `cvmkit.yaml:12:11: model.source: input "weights": no such file or folder`) {
		t.Fatalf("missing folder: err = %v", err)
	}
	os.Mkdir(filepath.Join(dir, "weights"), 0o755)
	if err := c.CheckInputs(); err != nil {
		t.Fatalf("all present: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("other kernel"), 0o644)
	err = c.CheckInputs()
	var cerr *Error
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), `9:13: image.kernel.digest: input "vmlinuz" has digest sha256:`) ||
		!strings.Contains(cerr.Hints()[0], "update the pin to sha256:"+sha256hex("other kernel")) {
		t.Fatalf("changed file: err = %v, hints %q", err, cerr.Hints())
	}
	os.Remove(filepath.Join(dir, "vmlinuz"))
	if err := c.CheckInputs(); err == nil || !strings.Contains(err.Error(), `8:11: image.kernel.path: input "vmlinuz": no such file or folder`) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestQuickstartExample(t *testing.T) {
	c, err := Load(filepath.Join(testenv.RepoRoot(t), "examples", "quickstart", "cvmkit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Platforms.SNP) == 0 || len(c.Platforms.TDX) == 0 || c.Model == nil {
		t.Errorf("the quickstart should exercise SNP, TDX and model encryption")
	}
}

// TestSchemaInSync keeps docs/cvmkit.schema.json equal to Schema().
// Refresh it with: go test ./config -run TestSchemaInSync -update
func TestSchemaInSync(t *testing.T) {
	p := filepath.Join(testenv.RepoRoot(t), "docs", "cvmkit.schema.json")
	if *update {
		if err := os.WriteFile(p, Schema(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(Schema()) {
		t.Fatalf("docs/cvmkit.schema.json is stale: run go test ./config -run TestSchemaInSync -update")
	}
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatal(err)
	}
}

// TestEveryKeyDocumented keeps the schema useful: every key has a description.
func TestEveryKeyDocumented(t *testing.T) {
	var s map[string]any
	json.Unmarshal(Schema(), &s)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k, p := range props {
				pm := p.(map[string]any)
				if _, ok := pm["description"]; !ok && k != "kind" {
					t.Errorf("%s.%s has no doc tag", path, k)
				}
			}
		}
		for k, c := range m {
			walk(path+"/"+k, c)
		}
	}
	walk("", s)
}

func sha256hex(s string) string {
	d, _ := digestOf([]byte(s))
	return d
}

// keyReference renders every key of the schema as a Markdown table: dotted
// path ("[]" for list items), type and description.
func keyReference(t *testing.T) string {
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	defs, _ := s["$defs"].(map[string]any)
	resolve := func(v map[string]any) map[string]any {
		for depth := 0; depth < 8; depth++ {
			ref, ok := v["$ref"].(string)
			if !ok {
				break
			}
			d, _ := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
			merged := map[string]any{}
			for k, x := range d {
				merged[k] = x
			}
			if desc, ok := v["description"]; ok {
				merged["description"] = desc
			}
			v = merged
		}
		return v
	}
	typeOf := func(v map[string]any) string {
		switch ty := v["type"].(type) {
		case string:
			if ty == "array" {
				if it, ok := v["items"].(map[string]any); ok {
					if t2, ok := resolve(it)["type"].(string); ok {
						return "list of " + t2
					}
				}
			}
			return ty
		case []any:
			var parts []string
			for _, x := range ty {
				parts = append(parts, fmt.Sprint(x))
			}
			return strings.Join(parts, " or ")
		}
		if _, ok := v["oneOf"]; ok {
			return "one of several forms"
		}
		if c, ok := v["const"]; ok {
			return fmt.Sprintf("`%v`", c)
		}
		return "any"
	}
	var b strings.Builder
	b.WriteString("| key | type | meaning |\n|---|---|---|\n")
	var walk func(path string, v map[string]any, depth int)
	walk = func(path string, v map[string]any, depth int) {
		v = resolve(v)
		if depth > 12 {
			return
		}
		if path != "" {
			desc := ""
			if d, ok := v["description"].(string); ok {
				desc = strings.ReplaceAll(d, "|", "\\|")
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", path, typeOf(v), desc)
		}
		if it, ok := v["items"].(map[string]any); ok {
			it = resolve(it)
			if props, ok := it["properties"].(map[string]any); ok {
				walkProps(path+"[]", props, depth, walk)
			}
		}
		if props, ok := v["properties"].(map[string]any); ok {
			walkProps(path, props, depth, walk)
		}
	}
	walk("", s, 0)
	return b.String()
}

func walkProps(prefix string, props map[string]any, depth int, walk func(string, map[string]any, int)) {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if v, ok := props[k].(map[string]any); ok {
			walk(p, v, depth+1)
		}
	}
}

// TestKeyReferenceInSync keeps docs/config.md's list of every key equal to
// the schema. Refresh it with: go test ./config -run TestKeyReferenceInSync -update
func TestKeyReferenceInSync(t *testing.T) {
	p := filepath.Join(testenv.RepoRoot(t), "docs", "config.md")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- keys:begin (generated from the schema: make docs) -->\n", "<!-- keys:end -->\n"
	i, j := strings.Index(string(b), begin), strings.Index(string(b), end)
	if i < 0 || j < i {
		t.Fatalf("docs/config.md has no %q … %q section", begin, end)
	}
	want := string(b[:i+len(begin)]) + keyReference(t) + string(b[j:])
	if *update {
		if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(b) != want {
		t.Fatal("docs/config.md's key list is stale: run go test ./config -run TestKeyReferenceInSync -update (make docs)")
	}
}

// FuzzValidName: validName accepts exactly what the regular expression it
// replaces accepts.
func FuzzValidName(f *testing.F) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	for _, s := range []string{"quickstart", "a", "", "-a", "a-b.c_d", "A", strings.Repeat("a", 128), strings.Repeat("a", 129), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validName(s) != re.MatchString(s) {
			t.Fatalf("validName(%q) = %v, regexp says %v", s, validName(s), re.MatchString(s))
		}
	})
}

// TestNullDocument: a document that is a YAML null (~, null, an anchor of
// nothing) is refused, not taken as a valid empty release (the FuzzParse
// target found &00).
func TestNullDocument(t *testing.T) {
	for _, doc := range []string{"~\n", "null\n", "&a\n", "&00", "--- ~\n"} {
		if _, err := Parse("c.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), "the config is empty (a YAML null)") {
			t.Errorf("%q: %v", doc, err)
		}
	}
}
