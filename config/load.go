package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is a loaded release config: the values, where they came from, and
// the folder relative paths are resolved against.
type Config struct {
	Release
	// File is the config's path as given; Dir is its folder.
	File string
	Dir  string

	d *decoder
}

// Load reads, decodes and validates the config at path. Input files are not
// opened; call [Config.CheckInputs] for that. The returned error is an
// [*Error] listing every problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: path, Msg: "cannot read the config: " + unwrapPathError(err).Error(), Hint: "give the path of a cvmkit.yaml; examples/quickstart/cvmkit.yaml is one"}}}
	}
	c, err := parse(path, data)
	if err != nil && c != nil {
		c.digestHints()
		err = c.err()
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// digestHints puts the digest to paste into the hint of each problem that
// says a file is not pinned, when the file is there: "add digest:
// sha256:…". (Load only: Parse reads no files.)
func (c *Config) digestHints() {
	for i, p := range c.d.problems {
		var pathKey string
		switch {
		case strings.HasSuffix(p.Path, ".digest") && strings.Contains(p.Msg, `missing required key "digest"`):
			pathKey = strings.TrimSuffix(p.Path, ".digest") + ".path"
		case p.Path == "image.kernel.path" && strings.Contains(p.Msg, "not pinned"):
			pathKey = p.Path
		default:
			continue
		}
		n, ok := c.d.nodes[pathKey]
		if !ok || n.Kind != yaml.ScalarNode || n.Value == "" {
			continue
		}
		f := c.Resolve(Path(n.Value))
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if d, err := FileDigest(f); err == nil {
			c.d.problems[i].Hint = fmt.Sprintf("add digest: %s (the digest of %s as it is now: pin it if that is the file you mean to release)", d, n.Value)
		}
	}
}

// Parse decodes and validates data as the config at path (used for
// positions in errors and to resolve relative paths).
func Parse(path string, data []byte) (*Config, error) {
	c, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// parse is Parse, returning the partly decoded config with its error too.
func parse(path string, data []byte) (*Config, error) {
	c := &Config{File: path, Dir: filepath.Dir(path)}
	c.d = &decoder{file: path, nodes: map[string]*yaml.Node{}, budget: maxNodes}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			c.d.fail(nil, "", "the file is empty", "start from examples/quickstart/cvmkit.yaml or run: cvmkit config schema")
		} else {
			c.d.problems = append(c.d.problems, syntaxProblem(path, err))
		}
		return nil, c.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		c.d.fail(&extra, "", "the file holds more than one YAML document", "keep one release per file; remove the \"---\" separator")
		return nil, c.err()
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	c.d.nodes[""] = root
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		// A document that is a null (~, null, an anchor of nothing) is no
		// release: never an empty valid one (the decoder takes a null
		// for "not given").
		c.d.fail(root, "", "the config is empty (a YAML null), not a mapping of keys (apiVersion, kind, metadata, image …)",
			"start from examples/quickstart/cvmkit.yaml or run: cvmkit config schema")
		return nil, c.err()
	}
	c.d.decode(root, reflect.ValueOf(&c.Release).Elem(), "")
	// Validate even after decoding problems, so every problem is listed at
	// once, except where the document is not a mapping of known keys at all.
	for _, p := range c.d.problems {
		c.d.decodeProblems = append(c.d.decodeProblems, p.Path)
	}
	if root.Kind == yaml.MappingNode && !containsEmpty(c.d.decodeProblems) {
		c.validate()
	}
	if err := c.err(); err != nil {
		return c, err
	}
	c.setDefaults()
	return c, nil
}

// syntaxProblem turns a YAML parser error ("yaml: line 3: …") into a Problem.
func syntaxProblem(path string, err error) Problem {
	p := Problem{File: path, Msg: "not valid YAML: " + err.Error(), Hint: "check the indentation and quoting around that line"}
	var line int
	if _, serr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); serr == nil {
		p.Line, p.Col = line, 1
		_, msg, _ := cutAfter(err.Error(), fmt.Sprintf("yaml: line %d: ", line))
		p.Msg = "not valid YAML: " + msg
	}
	return p
}

func cutAfter(s, prefix string) (string, string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return prefix, s[len(prefix):], true
	}
	return "", s, false
}

func (c *Config) err() error {
	if len(c.d.problems) == 0 {
		return nil
	}
	ps := c.d.problems
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Col < ps[j].Col
	})
	if len(ps) > maxProblems {
		ps = append(ps[:maxProblems:maxProblems], Problem{File: c.File, Msg: fmt.Sprintf("and %d more problems", len(c.d.problems)-maxProblems)})
	}
	return &Error{Problems: ps}
}

// Problem returns a problem positioned at the key path (such as
// platforms.snp[0].vcpuTypes[1]), for checks made outside this package:
// the CLI checks values against the measure packages, which config may not
// import.
func (c *Config) Problem(path, msg, hint string) Problem {
	p := Problem{File: c.File, Path: path, Msg: msg, Hint: hint}
	if n := c.d.at(path); n != nil {
		p.Line, p.Col = n.Line, n.Column
	}
	return p
}

// FirmwareByName returns the firmware entry with the given name, or nil.
func (c *Config) FirmwareByName(name string) *Firmware {
	for i := range c.Firmware {
		if c.Firmware[i].Name == name {
			return &c.Firmware[i]
		}
	}
	return nil
}

// Resolve returns p as a path usable from the working folder: relative
// paths are taken relative to the config file's folder.
func (c *Config) Resolve(p Path) string {
	if p == "" || filepath.IsAbs(string(p)) {
		return string(p)
	}
	return filepath.Join(c.Dir, filepath.FromSlash(string(p)))
}

// Input is an input file or folder named by the config, as checked by
// [Config.CheckInputs].
type Input struct {
	// Path is the key path in the config, like image.kernel.
	Key string `json:"key"`
	// Path is the file as written in the config (relative to it).
	Path string `json:"path"`
	// Digest is the pin, if any.
	Digest Digest `json:"digest,omitempty"`
	Dir    bool   `json:"dir,omitempty"`
	// Recipe is the firmware recipe that builds a missing file (a
	// firmware entry's build.recipe): release makes it, so CheckInputs
	// accepts its absence.
	Recipe string `json:"recipe,omitempty"`
	// Origin is where the config says the file comes from.
	Origin *Origin `json:"origin,omitempty"`
}

// Inputs lists every input file and folder the config names, in key order.
func (c *Config) Inputs() []Input {
	var in []Input
	walkInputs(reflect.ValueOf(c.Release), "", &in)
	return in
}

var (
	fileType = reflect.TypeFor[File]()
	pathType = reflect.TypeFor[Path]()
)

func walkInputs(v reflect.Value, path string, out *[]Input) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkInputs(v.Elem(), path, out)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkInputs(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Struct:
		if v.Type() == fileType {
			f := v.Interface().(File)
			*out = append(*out, Input{Key: path, Path: string(f.Path), Digest: f.Digest, Origin: f.Origin})
			return
		}
		if v.Type() == reflect.TypeFor[Firmware]() {
			f := v.Interface().(Firmware)
			in := Input{Key: path, Path: string(f.Path), Digest: f.Digest, Origin: f.Origin}
			if f.Build != nil {
				in.Recipe = f.Build.Recipe
			}
			*out = append(*out, in)
			if f.Vars != nil {
				walkInputs(reflect.ValueOf(*f.Vars), join(path, "vars"), out)
			}
			return
		}
		if v.Type() == reflect.TypeFor[Kernel]() {
			k := v.Interface().(Kernel)
			if k.Path != "" {
				*out = append(*out, Input{Key: join(path, "path"), Path: string(k.Path), Digest: k.Digest, Origin: k.Origin})
			}
			return
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			key := join(path, name)
			if opts == "inline" {
				key = path
			}
			fv := v.Field(i)
			if f.Type == pathType {
				if fv.String() != "" && f.Tag.Get("output") != "true" {
					*out = append(*out, Input{Key: key, Path: fv.String(), Dir: f.Tag.Get("dir") == "true"})
				}
				continue
			}
			walkInputs(fv, key, out)
		}
	}
}

// CheckInputs opens every input the config names: files must exist and
// match their pinned digest, folders must exist. It returns an [*Error]
// with the position of each input that fails.
func (c *Config) CheckInputs() error {
	c.d.problems = nil
	for _, in := range c.Inputs() {
		key := in.Key
		if in.Digest != "" && !strings.HasSuffix(key, ".path") {
			key = join(key, "path")
		}
		p := c.Resolve(Path(in.Path))
		fi, err := os.Stat(p)
		switch {
		case err != nil && in.Recipe != "" && os.IsNotExist(err):
			continue // cvmkit release builds it (firmware[].build)
		case err != nil:
			c.d.failAt(key, fmt.Sprintf("input %q: %v", in.Path, unwrapPathError(err)), fmt.Sprintf("paths are relative to the config's folder %q; create the file or fix the path", c.Dir))
			continue
		case in.Dir && !fi.IsDir():
			c.d.failAt(key, fmt.Sprintf("input %q is not a folder", in.Path), "")
			continue
		case !in.Dir && in.Digest != "" && !fi.Mode().IsRegular():
			c.d.failAt(key, fmt.Sprintf("input %q is not a regular file", in.Path), "")
			continue
		}
		if in.Digest == "" {
			continue
		}
		got, err := FileDigest(p)
		if err != nil {
			c.d.failAt(key, fmt.Sprintf("input %q: %v", in.Path, err), "")
			continue
		}
		if got != in.Digest {
			dk := strings.TrimSuffix(key, ".path") + ".digest"
			c.d.failAt(dk, fmt.Sprintf("input %q has digest %s, but the config pins %s", in.Path, got, in.Digest),
				"if the new file is the one you mean to release, update the pin to "+string(got)+"; otherwise restore the pinned file")
		}
	}
	return c.err()
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		if os.IsNotExist(pe.Err) {
			return fmt.Errorf("no such file or folder")
		}
		return pe.Err
	}
	return err
}

// FileDigest returns the sha256 digest of the file at path.
func FileDigest(path string) (Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return Digest("sha256:" + hex.EncodeToString(h.Sum(nil))), nil
}

func containsEmpty(l []string) bool {
	for _, s := range l {
		if s == "" {
			return true
		}
	}
	return false
}
