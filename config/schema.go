package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// SchemaID is the $id of the published schema.
const SchemaID = "https://cvmkit.dev/schema/v1alpha1/cvmkit.schema.json"

// Schema returns the JSON Schema (draft 2020-12) of cvmkit.yaml, generated
// from the Go types so that it cannot drift from what Load accepts. Editors
// use it for completion and early errors; Load stays the authority (it also
// checks cross-references and files, which a schema cannot).
func Schema() []byte {
	defs := map[string]any{}
	root := typeSchema(reflect.TypeFor[Release](), defs)
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "cvmkit release config"
	root["$defs"] = defs
	props := root["properties"].(map[string]any)
	props["apiVersion"] = map[string]any{"const": APIVersion, "description": "Config format version."}
	props["kind"] = map[string]any{"const": Kind, "description": "What the file is: a release config."}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		panic(err) // only maps, slices and strings: cannot fail
	}
	return buf.Bytes()
}

// typeSchema describes t. Named struct types other than the root go into
// defs and are referenced, so the schema stays readable.
func typeSchema(t reflect.Type, defs map[string]any) map[string]any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := reflect.New(t).Interface().(schemer); ok {
		return s.schema()
	}
	if e, ok := reflect.Zero(t).Interface().(enum); ok {
		return map[string]any{"type": "string", "enum": e.values()}
	}
	switch t.Kind() {
	case reflect.Struct:
		if t != reflect.TypeFor[Release]() {
			if _, ok := defs[t.Name()]; !ok {
				defs[t.Name()] = nil // break cycles
				defs[t.Name()] = structSchema(t, defs)
			}
			return map[string]any{"$ref": "#/$defs/" + t.Name()}
		}
		return structSchema(t, defs)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem(), defs)}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	}
	panic("config: no schema for " + t.String())
}

func structSchema(t reflect.Type, defs map[string]any) map[string]any {
	props := map[string]any{}
	required := []string{}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				add(f.Type)
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			s := map[string]any{}
			for k, v := range typeSchema(f.Type, defs) {
				s[k] = v
			}
			if doc := f.Tag.Get("doc"); doc != "" {
				s["description"] = doc
			}
			props[name] = s
			if f.Tag.Get("required") == "true" {
				required = append(required, name)
			}
		}
	}
	add(t)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}
