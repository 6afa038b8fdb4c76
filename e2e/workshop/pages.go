// Package workshop reads the workshop pages (docs/workshop/*.md) as
// runnable tests: each page's ```sh blocks are the steps, and the ```expect
// block after a step states what its output must show. The runner
// (workshop_integration_test.go) brings up a fresh lab per group of pages
// and runs the steps with bash, as a reader pastes them.
//
// A page opens with a header comment:
//
//	<!-- workshop: group=services topology=swarm-3 needs=invoices,viz -->
//
// group names the lab the page runs on (pages of one group share it, in
// file order); topology is the one the group's lab is brought up from
// (default swarm-3); needs lists the stacks the page drives (a page whose
// stack the topology does not deploy is reported as not run).
//
// An expect block holds one check a line; blank lines and lines starting
// with "#" are ignored:
//
//	REGEX       the step's output (stdout and stderr) must match (Go RE2,
//	            ^ and $ match at line ends)
//	! REGEX     the output must not match
//	exit: N     the step must exit with status N (default 0); "exit: nonzero"
//	            accepts any failure
package workshop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
)

// DefaultTopology is the topology a page runs on when its header names none.
const DefaultTopology = "swarm-3"

// Page is one workshop page.
type Page struct {
	Path     string   // as given to Load or ParsePage
	Group    string   // pages of one group share a lab, in file order
	Topology string   // the topology the group's lab comes from
	Needs    []string // stacks the page drives
	Steps    []Step
	// Setup are the ```sh setup blocks: what a reader types to get the
	// lab the runner brings up itself. They are shown, not run.
	Setup []Step
}

// Step is one ```sh block and what its output must show.
type Step struct {
	Line   int    // the line of the opening fence
	Script string // the block's text
	Expect Expect
}

// Expect is what a step's output and exit status must be.
type Expect struct {
	Line     int // the line of the expect block's opening fence; 0 if none
	Exit     int // wanted exit status unless AnyError
	AnyError bool
	Match    []Pattern
	NoMatch  []Pattern
}

// Pattern is one regular expression of an expect block.
type Pattern struct {
	Line int
	Re   *regexp.Regexp
}

var header = regexp.MustCompile(`<!--\s*workshop:([^>]*)-->`)

// Load reads every *.md page of dir except README.md, in file-name order.
func Load(dir string) ([]Page, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var pages []Page
	var errs []error
	for _, f := range files {
		if filepath.Base(f) == "README.md" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := ParsePage(f, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pages = append(pages, *p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(pages) == 0 {
		return nil, fmt.Errorf("%s: no workshop pages", dir)
	}
	return pages, checkGroups(pages)
}

// checkGroups makes sure the pages of one group agree on its topology.
func checkGroups(pages []Page) error {
	topo := map[string]Page{}
	for _, p := range pages {
		if first, ok := topo[p.Group]; ok && first.Topology != p.Topology {
			return fmt.Errorf("%s:1: group %s: topology %s, but %s says %s", p.Path, p.Group, p.Topology, first.Path, first.Topology)
		}
		if _, ok := topo[p.Group]; !ok {
			topo[p.Group] = p
		}
	}
	return nil
}

// ParsePage reads one page; errors name the file and line.
func ParsePage(path string, src []byte) (*Page, error) {
	p := &Page{Path: path, Topology: DefaultTopology}
	m := header.FindSubmatchIndex(src)
	if m == nil {
		return nil, fmt.Errorf("%s:1: no header comment <!-- workshop: group=NAME ... -->", path)
	}
	hline := lineAt(src, m[0])
	for _, f := range strings.Fields(string(src[m[2]:m[3]])) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("%s:%d: header: %q is not key=value", path, hline, f)
		}
		switch k {
		case "group":
			p.Group = v
		case "topology":
			p.Topology = v
		case "needs":
			p.Needs = strings.Split(v, ",")
		default:
			return nil, fmt.Errorf("%s:%d: header: unknown key %q (want group, topology, needs)", path, hline, k)
		}
	}
	if p.Group == "" {
		return nil, fmt.Errorf("%s:%d: header: group is missing", path, hline)
	}

	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	var last *Step // the step an expect block may follow
	err := ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		fb, ok := n.(*ast.FencedCodeBlock)
		if !entering || !ok {
			return ast.WalkContinue, nil
		}
		info := ""
		if fb.Info != nil {
			info = string(fb.Info.Segment.Value(src))
		}
		words := strings.Fields(info)
		lang := ""
		if len(words) > 0 {
			lang = words[0]
		}
		line, body := fenceLine(fb, src), blockText(fb, src)
		switch {
		case lang == "sh" && len(words) == 1:
			p.Steps = append(p.Steps, Step{Line: line, Script: body})
			last = &p.Steps[len(p.Steps)-1]
		case lang == "sh" && len(words) == 2 && words[1] == "setup":
			p.Setup = append(p.Setup, Step{Line: line, Script: body})
			last = nil
		case lang == "sh":
			return ast.WalkStop, fmt.Errorf("%s:%d: fence info %q: want sh, or sh setup", path, line, info)
		case lang == "expect":
			if last == nil {
				return ast.WalkStop, fmt.Errorf("%s:%d: an expect block must come right after the sh block it checks", path, line)
			}
			e, err := parseExpect(path, line, body)
			if err != nil {
				return ast.WalkStop, err
			}
			last.Expect = e
			last = nil
		default:
			last = nil // output samples and the like are not run
		}
		return ast.WalkContinue, nil
	})
	if err != nil {
		return nil, err
	}
	if len(p.Steps) == 0 {
		return nil, fmt.Errorf("%s: no ```sh steps", path)
	}
	return p, nil
}

// NotRun says why the page cannot run on a lab that deploys these stacks
// ("" when it can): a page is never passed without the stacks it drives.
func (p Page) NotRun(stacks []string) string {
	var lack []string
	for _, s := range p.Needs {
		if !slices.Contains(stacks, s) {
			lack = append(lack, s)
		}
	}
	if len(lack) == 0 {
		return ""
	}
	return fmt.Sprintf("NOT RUN (not a pass): needs stack %s, which topology %s does not deploy and this checkout lacks (app/%s/stack.yml)",
		strings.Join(lack, ", "), p.Topology, lack[0])
}

func parseExpect(path string, fence int, body string) (Expect, error) {
	e := Expect{Line: fence}
	for i, l := range strings.Split(body, "\n") {
		line := fence + 1 + i
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if v, ok := strings.CutPrefix(l, "exit:"); ok {
			v = strings.TrimSpace(v)
			if v == "nonzero" {
				e.AnyError = true
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return e, fmt.Errorf("%s:%d: exit: %q is not a number or nonzero", path, line, v)
			}
			e.Exit = n
			continue
		}
		neg := false
		if v, ok := strings.CutPrefix(l, "! "); ok {
			neg, l = true, strings.TrimSpace(v)
		}
		re, err := regexp.Compile("(?m)" + l)
		if err != nil {
			return e, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		pat := Pattern{Line: line, Re: re}
		if neg {
			e.NoMatch = append(e.NoMatch, pat)
		} else {
			e.Match = append(e.Match, pat)
		}
	}
	return e, nil
}

// Check compares what a step printed and how it exited with what the page
// expects; the error says which check failed, by line.
func (e Expect) Check(path string, output string, exit int) error {
	var errs []string
	switch {
	case e.AnyError && exit == 0:
		errs = append(errs, fmt.Sprintf("exited 0, the page expects a failure (%s:%d)", path, e.Line))
	case !e.AnyError && exit != e.Exit:
		errs = append(errs, fmt.Sprintf("exited %d, want %d", exit, e.Exit))
	}
	for _, p := range e.Match {
		if !p.Re.MatchString(output) {
			errs = append(errs, fmt.Sprintf("output does not match %q (%s:%d)", strings.TrimPrefix(p.Re.String(), "(?m)"), path, p.Line))
		}
	}
	for _, p := range e.NoMatch {
		if m := p.Re.FindString(output); m != "" {
			errs = append(errs, fmt.Sprintf("output matches %q, which it must not: %q (%s:%d)", strings.TrimPrefix(p.Re.String(), "(?m)"), m, path, p.Line))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

func lineAt(src []byte, off int) int { return bytes.Count(src[:off], []byte("\n")) + 1 }

// fenceLine is the line of a block's opening fence.
func fenceLine(fb *ast.FencedCodeBlock, src []byte) int {
	if fb.Info != nil {
		return lineAt(src, fb.Info.Segment.Start)
	}
	if fb.Lines().Len() > 0 {
		return lineAt(src, fb.Lines().At(0).Start) - 1
	}
	return 0
}

func blockText(fb *ast.FencedCodeBlock, src []byte) string {
	var b strings.Builder
	for i := 0; i < fb.Lines().Len(); i++ {
		seg := fb.Lines().At(i)
		b.Write(seg.Value(src))
	}
	return b.String()
}
