// Package textpb writes protobuf text format deterministically.
//
// Go's prototext adds random whitespace on purpose (so that nobody depends
// on its exact bytes), which would make two cvmkit builds write different
// policy files for the same values. This writer prints set fields in field
// number order, two-space indented, bytes as \x escapes: the same message
// always gives the same bytes, and prototext.Unmarshal reads it back
// (the tests check both).
package textpb

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Marshal returns m in text format.
func Marshal(m proto.Message) []byte {
	var sb strings.Builder
	write(&sb, m.ProtoReflect(), "")
	return []byte(sb.String())
}

func write(sb *strings.Builder, m protoreflect.Message, indent string) {
	fds := m.Descriptor().Fields()
	var set []protoreflect.FieldDescriptor
	for i := 0; i < fds.Len(); i++ {
		if fd := fds.Get(i); m.Has(fd) {
			set = append(set, fd)
		}
	}
	sort.Slice(set, func(i, j int) bool { return set[i].Number() < set[j].Number() })
	for _, fd := range set {
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				field(sb, fd, l.Get(i), indent)
			}
		case fd.IsMap():
			panic("textpb: map fields are not supported")
		default:
			field(sb, fd, v, indent)
		}
	}
}

func field(sb *strings.Builder, fd protoreflect.FieldDescriptor, v protoreflect.Value, indent string) {
	name := string(fd.Name())
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		fmt.Fprintf(sb, "%s%s {\n", indent, name)
		write(sb, v.Message(), indent+"  ")
		fmt.Fprintf(sb, "%s}\n", indent)
		return
	}
	fmt.Fprintf(sb, "%s%s: %s\n", indent, name, scalar(fd, v))
}

func scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.FormatInt(int64(v.Enum()), 10)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case protoreflect.StringKind:
		return quote([]byte(v.String()))
	case protoreflect.BytesKind:
		return quote(v.Bytes())
	}
	panic("textpb: unsupported kind " + fd.Kind().String())
}

// quote writes b as a text-format string: printable ASCII as is (with \"
// and \\ escaped), every other byte as \xNN.
func quote(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
