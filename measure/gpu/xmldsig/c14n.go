package xmldsig

import (
	"bytes"
	"sort"
	"strings"
)

// canonicalize writes the Canonical XML 1.1 form (without comments,
// https://www.w3.org/TR/xml-c14n11/) of the subtree rooted at apex, leaving
// out the element skip and its subtree (nil skips nothing). It is the
// transform chain "enveloped-signature, xml-c14n11" when apex is the document
// element and skip its ds:Signature (XMLDSig §6.6.4), and the SignedInfo
// canonicalization when apex is ds:SignedInfo.
//
// The tree parser already refused the constructs where C14N 1.1 differs from
// 1.0 (xml: attributes) and those this function would otherwise need to
// model (entities, PIs), so what is left is: namespace declarations that
// change the in-scope binding (all in-scope ones on the apex, §2.3 and
// §4.5 "Namespace nodes"), attributes sorted by namespace name then local
// name, empty elements as start-end pairs, and the escaping of §2.3.
func Canonicalize(apex, skip *Element) []byte {
	var b bytes.Buffer
	// The apex renders every binding in scope; the "parent" context is
	// empty, with an empty default namespace (§2.3: xmlns="" is output only
	// when it undeclares a default rendered on an ancestor).
	writeCanonical(&b, apex, skip, map[string]string{"": ""}, apex.inScope())
	return b.Bytes()
}

func writeCanonical(b *bytes.Buffer, e, skip *Element, rendered, scope map[string]string) {
	// Namespace declarations whose binding differs from what the nearest
	// output ancestor rendered.
	var decls []nsDecl
	for prefix, uri := range scope {
		prev, ok := rendered[prefix]
		if prefix == "" {
			if uri != prev {
				decls = append(decls, nsDecl{"", uri})
			}
			continue
		}
		if !ok || prev != uri {
			decls = append(decls, nsDecl{prefix, uri})
		}
	}
	sort.Slice(decls, func(i, j int) bool { return decls[i].Prefix < decls[j].Prefix })
	attrs := append([]Attr(nil), e.Attrs...)
	sort.Slice(attrs, func(i, j int) bool {
		if attrs[i].Space != attrs[j].Space {
			return attrs[i].Space < attrs[j].Space
		}
		return attrs[i].Local < attrs[j].Local
	})

	b.WriteByte('<')
	b.WriteString(e.QName())
	for _, d := range decls {
		if d.Prefix == "" {
			b.WriteString(` xmlns="`)
		} else {
			b.WriteString(` xmlns:` + d.Prefix + `="`)
		}
		escapeAttr(b, d.uri)
		b.WriteByte('"')
	}
	for _, a := range attrs {
		b.WriteByte(' ')
		if a.Prefix != "" {
			b.WriteString(a.Prefix + ":")
		}
		b.WriteString(a.Local + `="`)
		escapeAttr(b, a.Value)
		b.WriteByte('"')
	}
	b.WriteByte('>')

	childRendered := rendered
	if len(decls) > 0 {
		childRendered = make(map[string]string, len(rendered)+len(decls))
		for k, v := range rendered {
			childRendered[k] = v
		}
		for _, d := range decls {
			childRendered[d.Prefix] = d.uri
		}
	}
	for _, c := range e.Children {
		switch v := c.(type) {
		case Text:
			escapeText(b, string(v))
		case *Element:
			if v == skip {
				continue
			}
			childScope := scope
			if len(v.decls) > 0 {
				childScope = make(map[string]string, len(scope)+len(v.decls))
				for k, u := range scope {
					childScope[k] = u
				}
				for _, d := range v.decls {
					childScope[d.Prefix] = d.uri
				}
			}
			writeCanonical(b, v, skip, childRendered, childScope)
		}
	}
	b.WriteString("</" + e.QName() + ">")
}

var (
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", `"`, "&quot;", "\t", "&#x9;", "\n", "&#xA;", "\r", "&#xD;")
)

func escapeText(b *bytes.Buffer, s string) { textEscaper.WriteString(b, s) }
func escapeAttr(b *bytes.Buffer, s string) { attrEscaper.WriteString(b, s) }
