package topology

import (
	"slices"
	"strings"

	"github.com/swarmlab/swarmlab/lab/internal/yamlstrict"
)

// Issue is one problem in a topology file, located by line and field path.
type Issue struct {
	File string
	Line int    // 1-based; 0 when unknown (e.g. a topology built in code)
	Path string // field path such as nodes[2].role; empty for the whole file
	Msg  string
}

// String formats the issue as "file:line: path: message", the form editors
// and CI annotations understand.
func (i Issue) String() string {
	return yamlstrict.Issue{Line: i.Line, Path: i.Path, Msg: i.Msg}.Format(displayName(i.File))
}

func displayName(file string) string {
	if file == "" {
		return "<topology>"
	}
	return file
}

// Errors is every error found in a topology, sorted by line.
type Errors []Issue

// Error lists the issues one per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, issue := range e {
		lines[i] = issue.String()
	}
	return strings.Join(lines, "\n")
}

// sortIssues orders issues by line, keeping discovery order within a line.
func sortIssues(issues []Issue) {
	slices.SortStableFunc(issues, func(a, b Issue) int { return a.Line - b.Line })
}

// merge combines decode and validation errors. A validation error about a
// field that failed to decode is dropped: "role is required" after "role:
// expected a string" is noise.
func merge(decodeErrs, validateErrs Errors) Errors {
	all := slices.Clone(decodeErrs)
	for _, v := range validateErrs {
		if !slices.ContainsFunc(decodeErrs, func(d Issue) bool { return within(v.Path, d.Path) }) {
			all = append(all, v)
		}
	}
	sortIssues(all)
	return all
}

// within reports whether path is base or one of its descendants.
func within(path, base string) bool {
	if base == "" || path == base {
		return true
	}
	rest, ok := strings.CutPrefix(path, base)
	return ok && (rest[0] == '.' || rest[0] == '[')
}
