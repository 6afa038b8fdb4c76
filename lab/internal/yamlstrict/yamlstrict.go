// Package yamlstrict decodes YAML into Go structs strictly, driven by their
// yaml tags, for the files swarmlab reads: topologies and the x-swarmlab
// block of stack files.
//
// It walks the yaml.Node tree rather than decoding with KnownFields: that way
// every problem is collected (not just the first), each carries its line and
// field path (nodes[2].role), unknown fields are rejected with their line,
// and the line of every field is kept for the caller's own validation
// messages.
//
// A struct's fields are its exported fields, keyed and ordered as their yaml
// tags say (a field without a tag is keyed by its lower-cased name, as
// yaml.v3 does; "-" skips it). A yamlstrict tag refines the decoding of one
// field:
//
//	yamlstrict:"entry=label"             a map whose entries messages call labels
//	yamlstrict:"without=address port"    a struct field that does not accept
//	                                     some of its type's fields here
//
// Supported Go types are structs and pointers to them, string, int, bool,
// slices and maps with string keys of those, and types implementing
// yaml.Unmarshaler, which get one non-null node and whose error is the
// message. Decoding into any other type is a programming error: Decode
// panics on its first use, whatever the input.
package yamlstrict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Issue is one problem, located by line and field path.
type Issue struct {
	Line int    // 1-based; 0 when unknown
	Path string // field path such as nodes[2].role; empty for the whole document
	Msg  string
}

// Format returns the issue as "file:line: path: message", the form editors
// and CI annotations understand; the line and path are left out when unknown.
func (i Issue) Format(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if i.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(i.Line))
	}
	b.WriteString(": ")
	if i.Path != "" {
		b.WriteString(i.Path)
		b.WriteString(": ")
	}
	b.WriteString(i.Msg)
	return b.String()
}

// Documents parses up to max documents of data (the document nodes, in
// order; none for a file without any). A syntax error is an issue on its
// line. Reading stops at max, so a caller that wants one document and
// must reject a second asks for two.
func Documents(data []byte, max int) (docs []*yaml.Node, issue *Issue) {
	defer func() {
		// The YAML library is not ours; never let a panic in it escape.
		if r := recover(); r != nil {
			docs, issue = nil, &Issue{Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for len(docs) < max {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxIssue(err)
		}
		docs = append(docs, &doc)
	}
	return docs, nil
}

var yamlErrorLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// syntaxIssue turns "yaml: line 3: did not find expected key" into an issue
// on line 3.
func syntaxIssue(err error) *Issue {
	msg := err.Error()
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Issue{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Issue{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// Budget is a bound on the work of decoding data, for Options.Budget:
// generous for any file written by hand, far short of what aliases can make
// a small file expand to ("billion laughs").
func Budget(data []byte) int { return 1000 + 4*len(data) }

// Options say where the node being decoded sits.
type Options struct {
	// Path is the field path of the node, which every path reported
	// extends; empty for a whole document.
	Path string
	// Budget is how many mapping entries and list items may be visited;
	// see Budget. It is never less than the budget of an empty file.
	Budget int
}

// Result is what Decode found.
type Result struct {
	// Issues are the problems, in document order.
	Issues []Issue
	// Lines maps the path of every field, list item and map entry written
	// to the line of its key (of the item for a list): the line to report a
	// problem with its value at. A field written as null is absent when its
	// type decodes itself (yaml.Unmarshaler), so a default applies to it.
	Lines map[string]int
	// Decoded is false when the node itself was not of dst's kind (a list
	// for a struct), so nothing of it was decoded.
	Decoded bool
}

// Decode decodes n into dst, a non-nil pointer. It never stops at the first
// problem: everything that decodes is set, and every problem is an issue.
func Decode(n *yaml.Node, dst any, opts Options) Result {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic(fmt.Sprintf("yamlstrict: Decode into %T, want a non-nil pointer", dst))
	}
	if _, ok := checked.Load(v.Type()); !ok {
		check(v.Type().Elem(), map[reflect.Type]bool{})
		checked.Store(v.Type(), true)
	}
	d := &decoder{lines: map[string]int{opts.Path: n.Line}, budget: max(opts.Budget, Budget(nil))}
	ok := d.value(n, v.Elem(), opts.Path, tagOptions{})
	return Result{Issues: d.issues, Lines: d.lines, Decoded: ok}
}

var checked sync.Map // the pointer types Decode has checked

// check panics if t, or a type it holds, is one Decode cannot decode into,
// or has a tag it cannot honour: a programming error, found by the first
// test that decodes into t, whatever the input.
func check(t reflect.Type, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		check(t.Elem(), seen)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic(fmt.Sprintf("yamlstrict: cannot decode into %s: keys must be strings", t))
		}
		check(t.Elem(), seen)
	case reflect.Struct:
		for _, f := range fieldsOf(t, nil) {
			check(t.Field(f.index).Type, seen)
		}
	case reflect.String, reflect.Int, reflect.Bool:
	default:
		panic(fmt.Sprintf("yamlstrict: cannot decode into %s", t))
	}
}

type decoder struct {
	lines  map[string]int
	issues []Issue
	budget int
}

// spend charges one list item or mapping entry against the budget.
func (d *decoder) spend(n *yaml.Node) bool {
	d.budget--
	if d.budget == 0 {
		d.errorf(n.Line, "", "document expands to too many values through aliases")
	}
	return d.budget > 0
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.issues = append(d.issues, Issue{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value decodes n into v, which is addressable. It reports whether n was of
// v's kind (or null); a value with a problem inside (a mapping with an
// unknown field) still counts.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, opts tagOptions) bool {
	n = resolve(n)
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if IsNull(n) {
			delete(d.lines, path) // as if absent, so a default applies
			return true
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errorf(n.Line, path, "%v", err)
			return false
		}
		return true
	}
	switch v.Kind() {
	case reflect.Pointer:
		// A block written at all, even empty ("ssh:"), is there: only one
		// of the wrong kind is left nil.
		p := reflect.New(v.Type().Elem())
		if !d.value(n, p.Elem(), path, opts) {
			return false
		}
		v.Set(p)
		return true
	case reflect.Struct:
		return d.mapping(n, v, path, opts)
	case reflect.Slice:
		return d.sequence(n, v, path)
	case reflect.Map:
		return d.entries(n, v, path, opts)
	case reflect.String:
		return d.str(n, v, path, opts)
	case reflect.Int:
		return d.integer(n, v, path)
	case reflect.Bool:
		return d.boolean(n, v, path)
	}
	panic(fmt.Sprintf("yamlstrict: cannot decode into %s (at %q)", v.Type(), path)) // check let it through
}

// mapping decodes a mapping into a struct, reporting unknown and duplicate
// keys. Null ("provider:" with nothing under it) is the same as absent.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, opts tagOptions) bool {
	if IsNull(n) {
		return true
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, found %s", Describe(n))
		return false
	}
	fields := fieldsOf(v.Type(), opts.without)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(n.Content[i]) {
			return true
		}
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "expected a string key, found %s", Describe(k))
			continue
		}
		child := Join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, child, "duplicate key (first set at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := lookup(fields, k.Value)
		if !ok {
			d.errorf(k.Line, child, "unknown field%s (expected one of %s)", suggest(k.Value, fields), keys(fields))
			continue
		}
		d.lines[child] = k.Line
		d.value(val, v.Field(f.index), child, f.opts)
	}
	return true
}

// sequence decodes a list into a slice. Every item is appended, the zero
// value for one that failed to decode, so that item i of the slice is
// path[i] in the caller's messages.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) bool {
	if IsNull(n) {
		return true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "expected a list, found %s", Describe(n))
		return false
	}
	for i, item := range n.Content {
		if !d.spend(item) {
			return true
		}
		child := fmt.Sprintf("%s[%d]", path, i)
		d.lines[child] = item.Line // for an alias: where it is used, not where it points
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(item, elem, child, tagOptions{})
		v.Set(reflect.Append(v, elem))
	}
	return true
}

// entries decodes a mapping with keys of the user's choosing (label keys,
// image names) into a map. An entry whose value failed to decode is left
// out.
func (d *decoder) entries(n *yaml.Node, v reflect.Value, path string, opts tagOptions) bool {
	if IsNull(n) {
		return true
	}
	mapping, key, entry := "a mapping", "key", "key"
	if e := opts.entry; e != "" {
		mapping, key, entry = "a mapping of "+e+" keys to values", e+" key", e
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected %s, found %s", mapping, Describe(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(n.Content[i]) {
			return true
		}
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "expected a string %s, found %s", key, Describe(k))
			continue
		}
		child := Join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, child, "duplicate %s (first set at line %d)", entry, first)
			continue
		}
		seen[k.Value] = k.Line
		d.lines[child] = k.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		before := len(d.issues)
		d.value(n.Content[i+1], elem, child, tagOptions{value: opts.entry})
		if len(d.issues) > before {
			continue
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
	return true
}

// str decodes any scalar as a string, as yaml.v3 does for string fields:
// `name: 123` is the name "123". Null leaves the string empty.
func (d *decoder) str(n *yaml.Node, v reflect.Value, path string, opts tagOptions) bool {
	switch {
	case IsNull(n):
	case n.Kind == yaml.ScalarNode:
		v.SetString(n.Value)
	default:
		what := "a string"
		if opts.value != "" {
			what = "a string " + opts.value + " value"
		}
		d.errorf(n.Line, path, "expected %s, found %s", what, Describe(n))
		return false
	}
	return true
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) bool {
	switch {
	case IsNull(n):
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int":
		i, err := strconv.Atoi(n.Value)
		if err != nil {
			d.errorf(n.Line, path, "%q is not a whole number", n.Value)
			return false
		}
		v.SetInt(int64(i))
	default:
		d.errorf(n.Line, path, "expected a whole number, found %s", Describe(n))
		return false
	}
	return true
}

func (d *decoder) boolean(n *yaml.Node, v reflect.Value, path string) bool {
	switch {
	case IsNull(n):
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool":
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	default:
		d.errorf(n.Line, path, "expected true or false, found %s", Describe(n))
		return false
	}
	return true
}

// resolve follows an alias to the node it refers to.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// IsNull tells whether n is YAML null (~, null, or nothing).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Describe names what a node is, for "expected X, found Y" messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "an unsupported YAML node"
}

// LineOf returns the line of path in lines (Result.Lines) or, for a field
// that was not written (perhaps defaulted since), of its nearest written
// parent; 0 if there is none.
func LineOf(lines map[string]int, path string) int {
	for {
		if line, ok := lines[path]; ok {
			return line
		}
		if path == "" {
			return 0
		}
		i := strings.LastIndexAny(path, ".[")
		path = path[:max(i, 0)]
	}
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Join appends key to path, quoting keys (such as label keys with dots)
// that would make the path ambiguous.
func Join(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
