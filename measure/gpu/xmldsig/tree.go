package xmldsig

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// This file holds the small XML tree the RIM verifier works on, and its
// canonical form. encoding/xml's namespace handling loses the prefixes and
// the declarations that Canonical XML must reproduce, so the tree is built
// from raw tokens and resolves namespaces itself.
//
// The parser is deliberately stricter than XML: it accepts what NVIDIA's
// RIMs are and refuses what a forgery could use to make two readers see
// different documents (see docs/gpu.md, "Strict profile"):
//   - no DOCTYPE (so no entities beyond the five predefined ones), no
//     processing instruction other than the XML declaration;
//   - no attribute in the xml: namespace (C14N 1.1 gives xml:base, xml:id,
//     xml:lang and xml:space special inheritance rules in document subsets);
//   - no tab, CR or LF in an attribute value: XML normalises literal ones
//     to spaces while character references keep them, and encoding/xml does
//     not tell the two apart;
//   - comments are dropped, as "Canonical XML without comments" does.

// Namespace names used by the RIM and its signature.
const (
	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS = "http://www.w3.org/2000/xmlns/"
)

// maxDepth bounds element nesting; a RIM is four levels deep.
const maxDepth = 64

type Attr struct {
	Prefix, Local string // as written
	Space         string // resolved namespace name ("" for unprefixed attributes)
	Value         string
}

type nsDecl struct {
	Prefix string // "" for the default namespace
	uri    string
}

// element is one element of the tree. Its children are *Element or text.
type Element struct {
	Prefix, Local string
	Space         string
	decls         []nsDecl // declarations written on this element
	Attrs         []Attr
	Children      []any // *Element or Text
	parent        *Element
	Line          int
}

type Text string

func (e *Element) QName() string {
	if e.Prefix == "" {
		return e.Local
	}
	return e.Prefix + ":" + e.Local
}

// is reports whether e is the element {space}local.
func (e *Element) Is(space, local string) bool { return e.Space == space && e.Local == local }

// attr returns the value of the unprefixed attribute name.
func (e *Element) Attr(name string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Space == "" && a.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// elements returns e's element children.
func (e *Element) Elements() []*Element {
	var out []*Element
	for _, c := range e.Children {
		if ce, ok := c.(*Element); ok {
			out = append(out, ce)
		}
	}
	return out
}

// textContent returns the concatenated text children of e; ok is false if e
// has element children.
func (e *Element) TextContent() (string, bool) {
	var b strings.Builder
	for _, c := range e.Children {
		switch v := c.(type) {
		case Text:
			b.WriteString(string(v))
		case *Element:
			return "", false
		}
	}
	return b.String(), true
}

// inScope returns the namespace bindings in scope at e, as a map from prefix
// to namespace name ("" maps the default namespace; an empty value is an
// undeclared default namespace).
func (e *Element) inScope() map[string]string {
	var chain []*Element
	for p := e; p != nil; p = p.parent {
		chain = append(chain, p)
	}
	m := map[string]string{}
	for i := len(chain) - 1; i >= 0; i-- {
		for _, d := range chain[i].decls {
			m[d.Prefix] = d.uri
		}
	}
	return m
}

// parseXML reads a whole document into a tree and returns its root element.
func Parse(data []byte) (*Element, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty document")
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root, cur *Element
	var sawDecl bool
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("malformed XML: %w", err)
		}
		line, _ := d.InputPos()
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" || sawDecl || root != nil {
				return nil, fmt.Errorf("line %d: processing instruction <?%s?> is not allowed in a RIM", line, t.Target)
			}
			sawDecl = true
		case xml.Directive:
			return nil, fmt.Errorf("line %d: <!%s> is not allowed: a RIM has no DOCTYPE or entity declarations", line, firstWord(string(t)))
		case xml.Comment:
			// Dropped, as Canonical XML without comments does.
		case xml.CharData:
			if cur == nil {
				if len(bytes.TrimLeft(t, " \t\r\n")) != 0 {
					return nil, fmt.Errorf("line %d: text outside the root element", line)
				}
				continue
			}
			if n := len(cur.Children); n > 0 {
				if prev, ok := cur.Children[n-1].(Text); ok {
					cur.Children[n-1] = prev + Text(t)
					continue
				}
			}
			cur.Children = append(cur.Children, Text(t))
		case xml.StartElement:
			if cur == nil && root != nil {
				return nil, fmt.Errorf("line %d: a second root element <%s>", line, rawName(t.Name))
			}
			el, err := newElement(t, cur, line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			depth := 0
			for p := cur; p != nil; p = p.parent {
				depth++
			}
			if depth >= maxDepth {
				return nil, fmt.Errorf("line %d: elements nested more than %d deep", line, maxDepth)
			}
			if cur == nil {
				root = el
			} else {
				cur.Children = append(cur.Children, el)
			}
			cur = el
		case xml.EndElement:
			if cur == nil || rawName(t.Name) != cur.QName() {
				return nil, fmt.Errorf("line %d: unexpected end tag </%s>", line, rawName(t.Name))
			}
			cur = cur.parent
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	if cur != nil {
		return nil, fmt.Errorf("element <%s> is not closed", cur.QName())
	}
	return root, nil
}

func rawName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\r\n"); i > 0 {
		return s[:i]
	}
	return s
}

// newElement builds an element from a raw start tag, resolving its and its
// attributes' prefixes against the declarations in scope.
func newElement(t xml.StartElement, parent *Element, line int) (*Element, error) {
	el := &Element{Prefix: t.Name.Space, Local: t.Name.Local, parent: parent, Line: line}
	var plain []xml.Attr
	seenDecl := map[string]bool{}
	for _, a := range t.Attr {
		if strings.ContainsAny(a.Value, "\t\r\n") {
			return nil, fmt.Errorf("attribute %s of <%s> holds a tab or line break, which this strict profile refuses", rawName(a.Name), rawName(t.Name))
		}
		var prefix string
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			prefix = ""
		case a.Name.Space == "xmlns":
			prefix = a.Name.Local
			if prefix == "xml" || prefix == "xmlns" || a.Value == nsXML || a.Value == nsXMLNS {
				return nil, fmt.Errorf("<%s> redeclares a reserved namespace", rawName(t.Name))
			}
			if a.Value == "" {
				return nil, fmt.Errorf("<%s> undeclares prefix %q (XML 1.1 only)", rawName(t.Name), prefix)
			}
		default:
			plain = append(plain, a)
			continue
		}
		if seenDecl[prefix] {
			return nil, fmt.Errorf("<%s> declares namespace prefix %q twice", rawName(t.Name), prefix)
		}
		seenDecl[prefix] = true
		el.decls = append(el.decls, nsDecl{Prefix: prefix, uri: a.Value})
	}
	scope := el.inScope()
	if el.Prefix != "" {
		if el.Prefix == "xml" || el.Prefix == "xmlns" {
			return nil, fmt.Errorf("element <%s> uses a reserved prefix", el.QName())
		}
		uri, ok := scope[el.Prefix]
		if !ok {
			return nil, fmt.Errorf("element <%s>: namespace prefix %q is not declared", el.QName(), el.Prefix)
		}
		el.Space = uri
	} else {
		el.Space = scope[""]
	}
	seen := map[string]bool{}
	for _, a := range plain {
		at := Attr{Prefix: a.Name.Space, Local: a.Name.Local, Value: a.Value}
		if at.Prefix == "xml" {
			return nil, fmt.Errorf("attribute xml:%s on <%s>: xml: attributes are not allowed in a RIM", at.Local, el.QName())
		}
		if at.Prefix != "" {
			uri, ok := scope[at.Prefix]
			if !ok {
				return nil, fmt.Errorf("attribute %s:%s on <%s>: namespace prefix %q is not declared", at.Prefix, at.Local, el.QName(), at.Prefix)
			}
			at.Space = uri
		}
		key := at.Space + "\x00" + at.Local
		if seen[key] {
			return nil, fmt.Errorf("<%s> has attribute %s twice", el.QName(), rawName(a.Name))
		}
		seen[key] = true
		el.Attrs = append(el.Attrs, at)
	}
	return el, nil
}
