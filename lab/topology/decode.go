package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The file is decoded by walking the yaml.Node tree rather than with
// KnownFields: that way every problem is collected (not just the first), each
// carries its line and field path, and the line of every field is kept for
// validation messages.

// parse decodes data. It returns a nil topology when the document as a whole
// is unusable; otherwise a (possibly partial) topology and any field errors.
func parse(data []byte, filename string) (*Topology, Errors) {
	d := &decoder{file: filename, lines: map[string]int{}, budget: 1000 + 4*len(data)}
	root, issue := decodeDocument(data)
	if issue != nil {
		issue.File = filename
		return nil, Errors{*issue}
	}
	t := &Topology{source: filename, dir: absDir(filename), lines: d.lines}
	d.lines[""] = root.Line
	if !d.topology(root, t) {
		return nil, d.issues
	}
	sortIssues(d.issues)
	return t, d.issues
}

// decodeDocument returns the root node of the single document in data.
func decodeDocument(data []byte) (root *yaml.Node, issue *Issue) {
	defer func() {
		// The YAML library is not ours; never let a panic in it escape Parse.
		if r := recover(); r != nil {
			root, issue = nil, &Issue{Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Issue{Msg: "file is empty (expected a Topology document)"}
		}
		return nil, syntaxIssue(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Issue{Line: next.Line, Msg: "found more than one YAML document (expected exactly one Topology document per file)"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxIssue(err)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, &Issue{Line: doc.Line, Msg: "document is empty (expected a Topology document)"}
	}
	return doc.Content[0], nil
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

func absDir(filename string) string {
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		return filepath.Dir(filename)
	}
	return dir
}

type decoder struct {
	file   string
	lines  map[string]int
	issues Errors
	// budget bounds the work of walking the tree: aliases can make a small
	// file expand to a huge one ("billion laughs").
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
	d.issues = append(d.issues, Issue{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// field is one known key of a mapping and how to decode its value.
type field struct {
	key    string
	decode func(n *yaml.Node, path string)
}

func (d *decoder) topology(root *yaml.Node, t *Topology) bool {
	return d.mapping(root, "", []field{
		{"apiVersion", d.str(&t.APIVersion)},
		{"kind", d.str(&t.Kind)},
		{"name", d.str(&t.Name)},
		{"provider", func(n *yaml.Node, path string) {
			d.mapping(n, path, []field{
				{"type", d.str(&t.Provider.Type)},
				{"ssh", d.ssh(&t.Provider.SSH, false)},
			})
		}},
		{"swarm", func(n *yaml.Node, path string) {
			d.mapping(n, path, []field{
				{"dispatcherHeartbeat", d.duration(&t.Swarm.DispatcherHeartbeat)},
				{"subnet", d.str(&t.Swarm.Subnet)},
			})
		}},
		{"nodes", func(n *yaml.Node, path string) {
			d.sequence(n, path, func(item *yaml.Node, path string) {
				var node Node
				d.mapping(item, path, []field{
					{"name", d.str(&node.Name)},
					{"role", d.str(&node.Role)},
					{"availability", d.str(&node.Availability)},
					{"labels", d.labels(&node.Labels)},
					{"ssh", d.ssh(&node.SSH, true)},
				})
				t.Nodes = append(t.Nodes, node)
			})
		}},
		{"stacks", func(n *yaml.Node, path string) {
			d.sequence(n, path, func(item *yaml.Node, path string) {
				var stack Stack
				d.mapping(item, path, []field{
					{"file", d.str(&stack.File)},
					{"name", d.str(&stack.Name)},
				})
				t.Stacks = append(t.Stacks, stack)
			})
		}},
		{"e2e", func(n *yaml.Node, path string) {
			d.mapping(n, path, []field{
				{"require", d.strings(&t.E2E.Require)},
			})
		}},
	})
}

// mapping decodes a mapping with the given known keys, reporting unknown and
// duplicate keys. It reports whether n was a mapping at all.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field) bool {
	n = resolve(n)
	if isNull(n) {
		return true // "provider:" with nothing under it: same as absent
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, found %s", describe(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(n.Content[i]) {
			return true
		}
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "expected a string key, found %s", describe(k))
			continue
		}
		child := joinPath(path, k.Value)
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
		f.decode(v, child)
	}
	return true
}

// sequence calls item for each element of a sequence, with its path.
func (d *decoder) sequence(n *yaml.Node, path string, item func(n *yaml.Node, path string)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "expected a list, found %s", describe(n))
		return
	}
	for i, elem := range n.Content {
		if !d.spend(elem) {
			return
		}
		child := fmt.Sprintf("%s[%d]", path, i)
		d.lines[child] = elem.Line // for an alias: where it is used, not where it points
		item(elem, child)
	}
}

// str decodes any scalar as a string, as yaml.v3 does for string fields:
// `name: 123` is the name "123". Null leaves the string empty.
func (d *decoder) str(dst *string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		n = resolve(n)
		switch {
		case isNull(n):
		case n.Kind == yaml.ScalarNode:
			*dst = n.Value
		default:
			d.errorf(n.Line, path, "expected a string, found %s", describe(n))
		}
	}
}

// strings decodes a list of scalars as strings. Null leaves the list empty.
func (d *decoder) strings(dst *[]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.sequence(n, path, func(item *yaml.Node, path string) {
			var s string
			before := len(d.issues)
			d.str(&s)(item, path)
			if len(d.issues) == before {
				*dst = append(*dst, s)
			}
		})
	}
}

// ssh decodes an ssh block: a node's (with address and advertiseAddr) or
// the provider's defaults (without them).
func (d *decoder) ssh(dst **SSH, node bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s := &SSH{}
		fields := []field{
			{"user", d.str(&s.User)},
			{"port", d.integer(&s.Port)},
			{"identityFile", d.str(&s.IdentityFile)},
			{"knownHosts", d.str(&s.KnownHosts)},
			{"insecureIgnoreHostKey", d.boolean(&s.InsecureIgnoreHostKey)},
		}
		if node {
			fields = append([]field{{"address", d.str(&s.Address)}}, fields...)
			fields = append(fields, field{"advertiseAddr", d.str(&s.AdvertiseAddr)})
		}
		if d.mapping(n, path, fields) {
			*dst = s
		}
	}
}

func (d *decoder) integer(dst *int) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		n = resolve(n)
		switch {
		case isNull(n):
		case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int":
			v, err := strconv.Atoi(n.Value)
			if err != nil {
				d.errorf(n.Line, path, "%q is not a whole number", n.Value)
				return
			}
			*dst = v
		default:
			d.errorf(n.Line, path, "expected a whole number, found %s", describe(n))
		}
	}
}

func (d *decoder) boolean(dst *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		n = resolve(n)
		switch {
		case isNull(n):
		case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool":
			*dst = n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
		default:
			d.errorf(n.Line, path, "expected true or false, found %s", describe(n))
		}
	}
}

func (d *decoder) duration(dst *Duration) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		n = resolve(n)
		switch {
		case isNull(n):
			delete(d.lines, path) // treat as absent so Default applies
		case n.Kind == yaml.ScalarNode:
			v, err := parseDuration(n.Value)
			if err != nil {
				d.errorf(n.Line, path, "%v", err)
				return
			}
			dst.Duration = v
		default:
			d.errorf(n.Line, path, "expected a duration such as \"1s\", found %s", describe(n))
		}
	}
}

func (d *decoder) labels(dst *map[string]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		n = resolve(n)
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, path, "expected a mapping of label keys to values, found %s", describe(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !d.spend(n.Content[i]) {
				return
			}
			k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
			if k.Kind != yaml.ScalarNode {
				d.errorf(k.Line, path, "expected a string label key, found %s", describe(k))
				continue
			}
			child := joinPath(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				d.errorf(k.Line, child, "duplicate label (first set at line %d)", first)
				continue
			}
			seen[k.Value] = k.Line
			d.lines[child] = k.Line
			var value string
			switch {
			case isNull(v): // a label with an empty value is fine in Docker
			case v.Kind == yaml.ScalarNode:
				value = v.Value
			default:
				d.errorf(v.Line, child, "expected a string label value, found %s", describe(v))
				continue
			}
			if *dst == nil {
				*dst = map[string]string{}
			}
			(*dst)[k.Value] = value
		}
	}
}

// resolve follows an alias to the node it refers to.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
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

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinPath appends key to path, quoting keys (such as label keys with dots)
// that would make the path ambiguous.
func joinPath(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func lookup(fields []field, key string) (field, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

func keys(fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key
	}
	return strings.Join(names, ", ")
}

// suggest returns ` (did you mean "role"?)` for a near-miss such as "rol".
func suggest(key string, fields []field) string {
	for _, f := range fields {
		// One edit for short keys, two for longer ones, so "id" is not taken for "kind".
		limit := 1
		if len(f.key) > 4 {
			limit = 2
		}
		if distance(strings.ToLower(key), strings.ToLower(f.key)) <= limit {
			return fmt.Sprintf(" (did you mean %q?)", f.key)
		}
	}
	return ""
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b)) // not a typo; don't spend time on it
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
