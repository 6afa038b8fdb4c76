package yamlstrict

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// seconds decodes itself, as topology.Duration does.
type seconds int

func (s *seconds) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || !strings.HasSuffix(n.Value, "s") {
		return errors.New("expected seconds such as \"3s\"")
	}
	_, err := fmt.Sscanf(n.Value, "%ds", (*int)(s))
	return err
}

type host struct {
	Address string `yaml:"address"`
	User    string `yaml:"user,omitempty"`
	Port    int    `yaml:"port"`
}

type item struct {
	Name string `yaml:"name"`
}

type doc struct {
	Name     string            `yaml:"name"`
	Count    int               `yaml:"count"`
	On       bool              `yaml:"on"`
	Wait     seconds           `yaml:"wait"`
	Host     *host             `yaml:"host"`
	Defaults *host             `yaml:"defaults" yamlstrict:"without=address"`
	Items    []item            `yaml:"items"`
	Tags     []string          `yaml:"tags"`
	Labels   map[string]string `yaml:"labels" yamlstrict:"entry=label"`
	Hosts    map[string]host   `yaml:"hosts"`
	Untagged string
	Skipped  string `yaml:"-"`
	hidden   string // not a key: unexported
}

func decode(t *testing.T, src string) (doc, Result) {
	t.Helper()
	docs, issue := Documents([]byte(src), 1)
	if issue != nil {
		t.Fatalf("Documents: %+v", issue)
	}
	var d doc
	res := Decode(docs[0].Content[0], &d, Options{Budget: Budget([]byte(src))})
	return d, res
}

func TestDecodeFollowsTheTags(t *testing.T) {
	d, res := decode(t, `name: lab
count: 3
on: true
wait: 5s
host: {address: h1, port: 22}
defaults: {user: admin}
items: [{name: a}, {name: b}]
tags: [x, 1]
labels: {tier: front, empty: }
hosts: {h2: {address: h2}}
untagged: yes
`)
	if len(res.Issues) != 0 || !res.Decoded {
		t.Fatalf("issues %v, decoded %v", res.Issues, res.Decoded)
	}
	want := doc{
		Name: "lab", Count: 3, On: true, Wait: 5,
		Host: &host{Address: "h1", Port: 22}, Defaults: &host{User: "admin"},
		Items: []item{{"a"}, {"b"}}, Tags: []string{"x", "1"},
		Labels:   map[string]string{"tier": "front", "empty": ""},
		Hosts:    map[string]host{"h2": {Address: "h2"}},
		Untagged: "yes",
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
	for path, line := range map[string]int{"": 1, "name": 1, "host.port": 5, "items[1]": 7, "items[1].name": 7, "labels.empty": 9, "hosts.h2.address": 10} {
		if got, ok := res.Lines[path]; !ok || got != line {
			t.Errorf("Lines[%q] = %d, %v; want %d", path, got, ok, line)
		}
	}
}

func TestDecodeCollectsEveryProblem(t *testing.T) {
	_, res := decode(t, `name: [a]
count: ten
count: 3
on: maybe
nme: x
skipped: x
hidden: x
wait: {s: 1}
host: a
defaults: {address: h}
items: [a, {name: b, nam: c}]
labels: {[a]: b, c: [d], c: e}
hosts: {h: {port: 1.5}, g: {port: 0x1f}}
[k]: v
`)
	want := []Issue{
		{1, "name", "expected a string, found a list"},
		{2, "count", `expected a whole number, found the string "ten"`},
		{3, "count", "duplicate key (first set at line 2)"},
		{4, "on", `expected true or false, found the string "maybe"`},
		{5, "nme", `unknown field (did you mean "name"?) (expected one of name, count, on, wait, host, defaults, items, tags, labels, hosts, untagged)`},
		{6, "skipped", "unknown field (expected one of name, count, on, wait, host, defaults, items, tags, labels, hosts, untagged)"},
		{7, "hidden", "unknown field (expected one of name, count, on, wait, host, defaults, items, tags, labels, hosts, untagged)"},
		{8, "wait", `expected seconds such as "3s"`},
		{9, "host", `expected a mapping, found the string "a"`},
		{10, "defaults.address", "unknown field (expected one of user, port)"},
		{11, "items[0]", `expected a mapping, found the string "a"`},
		{11, "items[1].nam", `unknown field (did you mean "name"?) (expected one of name)`},
		{12, "labels", "expected a string label key, found a list"},
		{12, "labels.c", "expected a string label value, found a list"},
		{12, "labels.c", "duplicate label (first set at line 12)"},
		{13, "hosts.h.port", "expected a whole number, found the number 1.5"},
		{13, "hosts.g.port", `"0x1f" is not a whole number`},
		{14, "", "expected a string key, found a list"},
	}
	if !reflect.DeepEqual(res.Issues, want) {
		t.Errorf("issues:\n%s\nwant:\n%s", format(res.Issues), format(want))
	}
}

func format(issues []Issue) string {
	var b strings.Builder
	for _, i := range issues {
		b.WriteString(i.Format("f") + "\n")
	}
	return b.String()
}

func TestDecodeNull(t *testing.T) {
	d, res := decode(t, "name:\ncount:\nwait:\nhost:\ndefaults: 1\nitems:\nlabels:\nhosts: {h: }\n")
	if len(res.Issues) != 1 || res.Issues[0].Path != "defaults" {
		t.Fatalf("issues = %v, want only the one about defaults", res.Issues)
	}
	// A block written empty is there; one of the wrong kind is not.
	if d.Host == nil || *d.Host != (host{}) || d.Defaults != nil {
		t.Errorf("host = %v, defaults = %v; want an empty host and no defaults", d.Host, d.Defaults)
	}
	if d.Items != nil || d.Labels != nil || !reflect.DeepEqual(d.Hosts, map[string]host{"h": {}}) {
		t.Errorf("items %v, labels %v, hosts %v", d.Items, d.Labels, d.Hosts)
	}
	// A null value a type would decode itself is absent, so its default
	// applies; other null fields are written, and keep their line.
	if _, ok := res.Lines["wait"]; ok {
		t.Error("Lines has wait, written as null")
	}
	if res.Lines["name"] != 1 || res.Lines["count"] != 2 {
		t.Errorf("Lines = %v", res.Lines)
	}
}

// Item i of a slice is path[i], even when an item before it failed, so a
// caller's check of the slice points at the right line.
func TestDecodeKeepsItemsAligned(t *testing.T) {
	d, res := decode(t, "tags:\n  - [x]\n  - a\nitems:\n  - 1\n  - {name: b}\n")
	if !reflect.DeepEqual(d.Tags, []string{"", "a"}) || !reflect.DeepEqual(d.Items, []item{{}, {"b"}}) {
		t.Errorf("tags %q, items %v", d.Tags, d.Items)
	}
	if res.Lines["tags[1]"] != 3 || res.Lines["items[1]"] != 6 {
		t.Errorf("Lines = %v", res.Lines)
	}
}

// An entry whose value failed is left out rather than kept half-decoded.
func TestDecodeLeavesOutBadEntries(t *testing.T) {
	d, _ := decode(t, "hosts: {a: {address: x, port: p}, b: {address: y}}\nlabels: {c: [d]}\n")
	if !reflect.DeepEqual(d.Hosts, map[string]host{"b": {Address: "y"}}) || d.Labels != nil {
		t.Errorf("hosts %v, labels %v", d.Hosts, d.Labels)
	}
}

func TestDecodePath(t *testing.T) {
	docs, _ := Documents([]byte("x:\n  hosts: {a.b: {adress: x}}\n"), 1)
	var d doc
	res := Decode(docs[0].Content[0].Content[1], &d, Options{Path: "x"})
	want := []Issue{{2, `x.hosts["a.b"].adress`, `unknown field (did you mean "address"?) (expected one of address, user, port)`}}
	if !reflect.DeepEqual(res.Issues, want) {
		t.Errorf("issues = %v, want %v", res.Issues, want)
	}
	if res.Lines["x"] != 2 || res.Lines[`x.hosts["a.b"]`] != 2 {
		t.Errorf("Lines = %v", res.Lines)
	}
}

func TestDecodeWrongRoot(t *testing.T) {
	docs, _ := Documents([]byte("- a\n"), 1)
	var d doc
	res := Decode(docs[0].Content[0], &d, Options{})
	if res.Decoded || len(res.Issues) != 1 || res.Issues[0].Msg != "expected a mapping, found a list" {
		t.Errorf("Decode = %+v", res)
	}
}

func TestDecodeAliases(t *testing.T) {
	d, res := decode(t, "host: &h {address: a}\nhosts: {b: *h}\ntags: &t [x]\nitems: [&i {name: n}, *i]\n")
	if len(res.Issues) != 0 || d.Hosts["b"].Address != "a" || len(d.Items) != 2 || d.Items[1].Name != "n" {
		t.Errorf("got %+v, %v", d, res.Issues)
	}
	// The line of an item is where it is used, not where its anchor is.
	d, res = decode(t, "items:\n  - &i {name: n}\n  - *i\n")
	if res.Lines["items[1]"] != 3 {
		t.Errorf("Lines = %v", res.Lines)
	}
}

// Aliases can make a small file expand to a huge one: decoding stops at the
// budget, with one issue.
func TestDecodeBudget(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for _, n := range []string{"b", "c", "d", "e", "f"} {
		prev := string(rune(n[0] - 1))
		src += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
	}
	src += "tags: *f\n"
	docs, _ := Documents([]byte(src), 1)
	var d struct {
		Tags [][][][][][]string `yaml:"tags"`
	}
	root := docs[0].Content[0]
	root.Content = root.Content[len(root.Content)-2:] // tags only: the anchors are not fields
	res := Decode(root, &d, Options{Budget: Budget([]byte(src))})
	if len(res.Issues) != 1 || res.Issues[0].Msg != "document expands to too many values through aliases" {
		t.Errorf("issues = %v", res.Issues)
	}
}

func TestDocuments(t *testing.T) {
	for _, tt := range []struct {
		src   string
		max   int
		docs  int
		issue *Issue
	}{
		{"", 2, 0, nil},
		{"# only a comment\n", 2, 0, nil},
		{"a: 1\n", 2, 1, nil},
		{"a: 1\n---\nb: 2\n", 2, 2, nil},
		{"a: 1\n---\nb: 2\n---\nc: 3\n", 2, 2, nil},
		{"a: 1\n---\nb: [\n", 1, 1, nil}, // not read that far
		{"a: 1\n---\nb: [\n", 2, 0, &Issue{Line: 3, Msg: "invalid YAML: did not find expected node content"}},
		{"a: b\n  c: d\n", 1, 0, &Issue{Line: 2, Msg: "invalid YAML: mapping values are not allowed in this context"}},
	} {
		docs, issue := Documents([]byte(tt.src), tt.max)
		if len(docs) != tt.docs || !reflect.DeepEqual(issue, tt.issue) {
			t.Errorf("Documents(%q, %d) = %d docs, %+v; want %d, %+v", tt.src, tt.max, len(docs), issue, tt.docs, tt.issue)
		}
	}
}

func TestDescribe(t *testing.T) {
	for src, want := range map[string]string{
		"~": "null", "a": `the string "a"`, "'1'": `the string "1"`, "1": "the number 1", "1.5": "the number 1.5",
		"true": "the boolean true", "!!binary aGk=": `the value "aGk="`, "[a]": "a list", "{a: b}": "a mapping",
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(src), &n); err != nil {
			t.Fatal(err)
		}
		if got := Describe(n.Content[0]); got != want {
			t.Errorf("Describe(%s) = %s, want %s", src, got, want)
		}
	}
}

func TestJoinAndFormat(t *testing.T) {
	for _, tt := range [][3]string{
		{"", "nodes", "nodes"},
		{"nodes[0]", "role", "nodes[0].role"},
		{"labels", "a.b/c", `labels["a.b/c"]`},
		{"", "my key", `["my key"]`},
	} {
		if got := Join(tt[0], tt[1]); got != tt[2] {
			t.Errorf("Join(%q, %q) = %q, want %q", tt[0], tt[1], got, tt[2])
		}
	}
	for issue, want := range map[Issue]string{
		{3, "nodes", "expected a list"}: "lab.yaml:3: nodes: expected a list",
		{0, "", "file is empty"}:        "lab.yaml: file is empty",
		{2, "", "invalid YAML: x"}:      "lab.yaml:2: invalid YAML: x",
	} {
		if got := issue.Format("lab.yaml"); got != want {
			t.Errorf("Format = %q, want %q", got, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	fields := []field{{key: "kind"}, {key: "nodes"}, {key: "role"}}
	for key, want := range map[string]string{
		"rol": ` (did you mean "role"?)`, "Nodez": ` (did you mean "nodes"?)`, "nods": ` (did you mean "nodes"?)`,
		"id": "", "zzzz": "", strings.Repeat("n", 100): "",
	} {
		if got := suggest(key, fields); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

// A Go type or tag the decoder cannot honour is a programming error,
// reported on first use.
func TestUnsupportedTypesPanic(t *testing.T) {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "x"}
	for name, dst := range map[string]any{
		"float":   new(float64),
		"int key": new(map[int]string),
		"bad option": &struct {
			A string `yamlstrict:"nope"`
		}{},
		"entry": &struct {
			A string `yamlstrict:"entry=x"`
		}{},
		"without": &struct {
			A host `yamlstrict:"without=nope"`
		}{},
		"inline": &struct {
			A host `yaml:",inline"`
		}{},
		"not pointer": doc{},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			Decode(n, dst, Options{})
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: a\ncount: 1\nhost: {address: b}\nitems: [{name: c}]\nlabels: {d: e}\n"))
	f.Add([]byte("a: &a [*a]\ntags: *a\n"))
	f.Add([]byte("hosts: {a: &h {port: x}, b: *h, <<: *h}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, issue := Documents(data, 1)
		if issue != nil || len(docs) == 0 || len(docs[0].Content) == 0 {
			return
		}
		var d doc
		res := Decode(docs[0].Content[0], &d, Options{Budget: Budget(data)})
		for _, i := range res.Issues {
			if i.Line <= 0 || i.Msg == "" {
				t.Errorf("issue without a line or message: %+v", i)
			}
		}
	})
}

func TestLineOf(t *testing.T) {
	lines := map[string]int{"": 1, "nodes": 3, "nodes[1]": 5, `nodes[1].labels["a.b"]`: 7}
	for path, want := range map[string]int{
		"nodes": 3, "nodes[1].role": 5, "nodes[2].name": 3, `nodes[1].labels["a.b"]`: 7, "swarm.subnet": 1,
	} {
		if got := LineOf(lines, path); got != want {
			t.Errorf("LineOf(%q) = %d, want %d", path, got, want)
		}
	}
	if got := LineOf(map[string]int{"x": 2}, "y.z"); got != 0 {
		t.Errorf("LineOf with nothing written = %d, want 0", got)
	}
}
