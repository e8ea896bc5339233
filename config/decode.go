package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a config, at a position in its file.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"column"`
	// Path is the key path, like platforms.snp[0].vcpus.
	Path string `json:"path"`
	Msg  string `json:"message"`
	Hint string `json:"hint,omitempty"`
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
	if p.Path != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Path, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// Error lists every problem found in a config, in file order.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Hints returns each problem's hint, prefixed with its position when there
// is more than one problem so the user can tell which goes with which.
func (e *Error) Hints() []string {
	var hints []string
	for _, p := range e.Problems {
		if p.Hint == "" {
			continue
		}
		if len(e.Problems) > 1 {
			hints = append(hints, fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Hint))
		} else {
			hints = append(hints, p.Hint)
		}
	}
	return hints
}

// maxProblems bounds the report: past this many, the rest are noise.
const maxProblems = 20

// maxNodes bounds how many YAML nodes one config may expand to, so an alias
// bomb ("billion laughs") is an error instead of an out-of-memory.
const maxNodes = 100000

// decoder turns a YAML node tree into the config types strictly, recording
// where each value came from.
type decoder struct {
	file     string
	problems []Problem
	nodes    map[string]*yaml.Node // key path → node, for later checks
	budget   int
	// decodeProblems are the key paths decoding failed at.
	decodeProblems []string
}

func (d *decoder) fail(n *yaml.Node, path, msg, hint string) {
	p := Problem{File: d.file, Path: path, Msg: msg, Hint: hint}
	if n != nil {
		p.Line, p.Col = n.Line, n.Column
	}
	d.problems = append(d.problems, p)
}

// at returns the node recorded for path, or for its nearest recorded parent.
func (d *decoder) at(path string) *yaml.Node {
	for {
		if n, ok := d.nodes[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.nodes[""]
		}
		path = path[:i]
	}
}

func (d *decoder) failAt(path, msg, hint string) {
	// After decoding failed somewhere, validation still runs so that every
	// problem is reported at once; it stays quiet where a decoding problem
	// already speaks (the value there is missing or wrong, not invalid).
	for _, p := range d.decodeProblems {
		// A file's digest that failed to decode is not "missing" either.
		if strings.HasSuffix(path, ".path") && p == strings.TrimSuffix(path, ".path")+".digest" {
			return
		}
		if p == path || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return
		}
	}
	d.fail(d.at(path), path, msg, hint)
}

var (
	scalarType = reflect.TypeFor[scalar]()
	enumType   = reflect.TypeFor[enum]()
)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "an empty value"
		case "!!bool":
			return "a boolean " + strconv.Quote(n.Value)
		case "!!int", "!!float":
			return "a number " + n.Value
		}
		return "a string " + strconv.Quote(n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.fail(n, path, "the config expands to too many values", "remove deeply nested YAML aliases (*name)")
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path)
		return
	}
	d.nodes[path] = n
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the default
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(scalarType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a single value, got "+kindName(n), "")
			return
		}
		if err := v.Addr().Interface().(scalar).setScalar(n.Value); err != nil {
			hint := ""
			var he *hintError
			if errors.As(err, &he) {
				hint = he.hint
			}
			d.fail(n, path, err.Error(), hint)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got "+kindName(n), "write a YAML list: [a, b] or one \"- item\" per line")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got "+kindName(n), "")
			return
		}
		if v.Type().Implements(enumType) {
			vals := v.Interface().(enum).values()
			if !contains(vals, n.Value) {
				d.fail(n, path, fmt.Sprintf("unknown value %q; want one of %s", n.Value, strings.Join(vals, ", ")), didYouMean(n.Value, vals))
				return
			}
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fail(n, path, "want true or false, got "+kindName(n), "")
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int64, reflect.Int32:
		x, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
			d.fail(n, path, "want an integer, got "+kindName(n), "")
			return
		}
		v.SetInt(x)
	case reflect.Uint32, reflect.Uint64:
		x, err := strconv.ParseUint(n.Value, 0, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
			d.fail(n, path, "want a non-negative integer, got "+kindName(n), "")
			return
		}
		v.SetUint(x)
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

// field is a struct field reachable by a YAML key.
type field struct {
	key      string
	index    []int
	required bool
}

// fields lists t's keys, flattening `yaml:",inline"` embedded structs.
func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			for _, sub := range fields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out = append(out, field{key: name, index: []int{i}, required: f.Tag.Get("required") == "true"})
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of keys, got "+kindName(n), "")
		return
	}
	fs := fields(v.Type())
	byKey := map[string]field{}
	var keys []string
	for _, f := range fs {
		byKey[f.key] = f
		keys = append(keys, f.key)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" {
			d.fail(k, path, "merge keys (<<) are not supported", "write the keys out; every input should be visible where it is used")
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "a key must be a plain string", "")
			continue
		}
		f, ok := byKey[k.Value]
		if !ok {
			hint := didYouMean(k.Value, keys)
			if hint == "" {
				sort.Strings(keys)
				hint = "valid keys here: " + strings.Join(keys, ", ")
			}
			where := path
			if where == "" {
				where = "the top level"
			}
			d.fail(k, join(path, k.Value), fmt.Sprintf("unknown key %q in %s", k.Value, where), hint)
			continue
		}
		if seen[k.Value] {
			d.fail(k, join(path, k.Value), fmt.Sprintf("key %q appears twice", k.Value), "keep one of them")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.FieldByIndex(f.index), join(path, k.Value))
	}
	for _, f := range fs {
		if f.required && !seen[f.key] {
			d.fail(n, join(path, f.key), fmt.Sprintf("missing required key %q", f.key), "see docs/config.md or run: cvmkit config schema")
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Suggest returns "did you mean X?" for the candidate closest to s, or ""
// when none is close.
func Suggest(s string, candidates []string) string { return didYouMean(s, candidates) }

// didYouMean suggests the closest candidate to s, if one is close.
func didYouMean(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if len(s) >= 3 && strings.HasPrefix(strings.ToLower(c), strings.ToLower(s)) {
			return fmt.Sprintf("did you mean %q?", c)
		}
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(s)/3) {
		return ""
	}
	return fmt.Sprintf("did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
