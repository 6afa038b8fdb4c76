package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestContainerLogPath(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"/app_web.1.x7k2p9q0r5s8t1u4v6w3y0z2a", map[string]string{
			labelServiceName: "app_web", labelTaskID: "x7k2p9q0r5s8t1u4v6w3y0z2a", labelTaskName: "app_web.1.x7k2p9q0r5s8t1u4v6w3y0z2a",
		}, "tasks/app_web/app_web.1.x7k2p9q0r5s8t1u4v6w3y0z2a@w1.log"},
		// a global service's task is named after its node's id
		{"/mon_agent.n0d3.t4sk", map[string]string{
			labelServiceName: "mon_agent", labelTaskID: "t4sk", labelTaskName: "mon_agent.n0d3.t4sk",
		}, "tasks/mon_agent/mon_agent.n0d3.t4sk@w1.log"},
		// no task name: the service's
		{"/x", map[string]string{labelServiceName: "web", labelTaskID: "t1"}, "tasks/web/web.t1@w1.log"},
		// not a task
		{"/probe", nil, "nodes/w1/containers/probe.0123456789ab.log"},
		// names that would leave the directory are made harmless
		{"/../../etc", map[string]string{labelServiceName: "../../x/y", labelTaskID: "t/../1", labelTaskName: ""},
			"tasks/_._.._x_y/_._.._x_y.t_.._1@w1.log"},
	} {
		if got := containerLogPath("w1", id, c.name, c.labels); got != c.want {
			t.Errorf("containerLogPath(%q, %v) = %q, want %q", c.name, c.labels, got, c.want)
		}
		if got := containerLogPath("w1", id, c.name, c.labels); strings.Contains(got, "/../") || strings.HasPrefix(got, "..") {
			t.Errorf("%q leaves the logs directory", got)
		}
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{"": "_", "..": "_.", ".hidden": "_hidden", "a b/c": "a_b_c", "web.1@w-2_x": "web.1@w-2_x", "é": "__"} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTaskLabel(t *testing.T) {
	for in, want := range map[string]string{
		"app_web.1.x7k2p9q0r5s8t1u4v6w3y0z2a@w1.log":   "app_web.1.x7k2p9q0r5s8@w1",
		"app_web.1.x7k2p9q0r5s8t1u4v6w3y0z2a@w1.log.1": "app_web.1.x7k2p9q0r5s8@w1",
		"web.t1@w1.log": "web.t1@w1",
	} {
		if got := taskLabel(in); got != want {
			t.Errorf("taskLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLineFormat(t *testing.T) {
	ts := time.Date(2024, 5, 1, 10, 0, 0, 120000000, time.FixedZone("CEST", 7200))
	line := formatLine(ts, "stderr", []byte("boom: it broke\r\n"))
	if want := "2024-05-01T08:00:00.120000000Z stderr boom: it broke\n"; string(line) != want {
		t.Fatalf("formatLine = %q, want %q", line, want)
	}
	got, stream, msg, ok := parseLine(strings.TrimSuffix(string(line), "\n"))
	if !ok || !got.Equal(ts) || stream != "stderr" || msg != "boom: it broke" {
		t.Errorf("parseLine = %v %q %q %v", got, stream, msg, ok)
	}
	// A message keeps its own spaces, and may be empty.
	if _, _, msg, ok := parseLine("2024-05-01T08:00:00.000000000Z stdout   two  spaces "); !ok || msg != "  two  spaces " {
		t.Errorf("message %q", msg)
	}
	if _, _, msg, ok := parseLine("2024-05-01T08:00:00.000000000Z stdout "); !ok || msg != "" {
		t.Errorf("empty message %q %v", msg, ok)
	}
	// Fixed width: text order is time order.
	a := string(formatLine(time.Date(2024, 5, 1, 10, 0, 0, 900000000, time.UTC), "stdout", nil))
	b := string(formatLine(time.Date(2024, 5, 1, 10, 0, 1, 0, time.UTC), "stdout", nil))
	if !(a < b) {
		t.Errorf("%q sorts after %q", a, b)
	}
	// A line cut by a kill, or written by hand, is a message with no time.
	for _, bad := range []string{"2024-05-01T08:00:0", "hello world", "2024-05-01T08:00:00Z stdin x"} {
		if ts, stream, msg, ok := parseLine(bad); ok || !ts.IsZero() || stream != "stdout" || msg != bad {
			t.Errorf("parseLine(%q) = %v %q %q %v", bad, ts, stream, msg, ok)
		}
	}
}

func TestSplitTimestamp(t *testing.T) {
	ts, msg := splitTimestamp([]byte("2024-05-01T08:00:00.123456789Z hello there"))
	if ts.Nanosecond() != 123456789 || string(msg) != "hello there" {
		t.Errorf("got %v %q", ts, msg)
	}
	if ts, msg := splitTimestamp([]byte("no time here")); !ts.IsZero() || string(msg) != "no time here" {
		t.Errorf("got %v %q", ts, msg)
	}
}

// The collector is compiled from these files alone (lab/images builds it
// as a module of its own): it may import the standard library only.
func TestStandardLibraryOnly(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s, which is not in the standard library", f, p)
			}
		}
	}
}
