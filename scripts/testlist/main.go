// Command testlist prints, for each package matched by its arguments, the
// tests that exist only when the given build tags are set, as a -run
// pattern, one package a line:
//
//	testlist -tags integration ./lab/... ./app/...
//	github.com/swarmlab/swarmlab/lab	^(TestLabUp|TestSSHLab)$	labs
//	github.com/swarmlab/swarmlab/app/crud	^(TestWrites)$	other
//
// The third column is "labs" when one of the package's tag-only test files
// carries the line comment `//swarmlab:labs`, alone or followed by a space
// and words (its tests bring up whole
// labs, which must not share the machine with other labs), else "other".
// scripts/test runs the "labs" packages one at a time and, beside them, the
// "other" ones (single containers or servers on loopback) one at a time.
//
// scripts/test runs each such package once more with the tags and that
// pattern, so the integration step runs only the integration tests and the
// unit tests are not run (and counted) twice. Packages without such tests
// are not printed.
//
// It reads the source (go/build for the files each build selects, go/parser
// for the functions) and runs no test binary: `go test -list` would run
// each package's TestMain, and the integration ones clean up Docker
// containers and labs before they list anything.
//
// A test is tag-only when it is declared in a _test.go file that the build
// with the tags selects and the build without them does not. Test, Fuzz and
// Example functions count (TestMain is not a test) (go test -run selects all three); benchmarks do
// not run without -bench and are left out.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

func main() {
	tags := flag.String("tags", "", "comma-separated build tags, as for go test -tags")
	flag.Parse()
	if *tags == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: testlist -tags TAGS PACKAGES...")
		os.Exit(2)
	}
	tagList := strings.Split(*tags, ",")
	pkgs, err := goList(tagList, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testlist:", err)
		os.Exit(1)
	}
	for _, p := range pkgs {
		tests, labs, err := tagOnlyTests(p.dir, tagList)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testlist: %s: %v\n", p.path, err)
			os.Exit(1)
		}
		if len(tests) > 0 {
			kind := "other"
			if labs {
				kind = "labs"
			}
			fmt.Printf("%s\t%s\t%s\n", p.path, runPattern(tests), kind)
		}
	}
}

type pkg struct{ path, dir string }

// goList expands package patterns as the tagged build sees them (a
// directory of tagged files only is a package only then).
func goList(tags, patterns []string) ([]pkg, error) {
	args := append([]string{"list", "-tags", strings.Join(tags, ","), "-f", "{{.ImportPath}}\t{{.Dir}}"}, patterns...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, dir, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			return nil, fmt.Errorf("go list printed %q", sc.Text())
		}
		pkgs = append(pkgs, pkg{path, dir})
	}
	return pkgs, nil
}

// runPattern is the -run pattern that matches exactly these top-level tests.
func runPattern(tests []string) string {
	return "^(" + strings.Join(tests, "|") + ")$"
}

// labsDirective marks a tag-only test file whose tests bring up labs.
const labsDirective = "//swarmlab:labs"

// tagOnlyTests returns, sorted, the tests of the package in dir that only
// the build with tags has, and whether one of their files carries
// labsDirective.
func tagOnlyTests(dir string, tags []string) (tests []string, labs bool, err error) {
	with, err := testFiles(dir, tags)
	if err != nil {
		return nil, false, err
	}
	without, err := testFiles(dir, nil)
	if err != nil {
		return nil, false, err
	}
	fset := token.NewFileSet()
	for _, f := range with {
		if slices.Contains(without, f) {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, f), nil, parser.SkipObjectResolution|parser.ParseComments)
		if err != nil {
			return nil, false, err
		}
		for _, g := range file.Comments {
			for _, c := range g.List {
				if c.Text == labsDirective || strings.HasPrefix(c.Text, labsDirective+" ") {
					labs = true
				}
			}
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil {
				continue
			}
			name := fn.Name.Name
			if name == "TestMain" { // not a test: it runs the others
				continue
			}
			if isTest(name, "Test") || isTest(name, "Fuzz") || isTest(name, "Example") {
				tests = append(tests, name)
			}
		}
	}
	slices.Sort(tests)
	return slices.Compact(tests), labs, nil
}

// testFiles returns the _test.go files of dir that a build with tags selects.
func testFiles(dir string, tags []string) ([]string, error) {
	ctx := build.Default
	ctx.BuildTags = tags
	p, err := ctx.ImportDir(dir, 0)
	if err != nil {
		if _, none := err.(*build.NoGoError); none {
			return nil, nil
		}
		return nil, err
	}
	return append(slices.Clone(p.TestGoFiles), p.XTestGoFiles...), nil
}

// isTest is go test's rule: name is prefix, or prefix followed by anything
// but a lower-case letter (TestFoo, Test_foo; not Testify).
func isTest(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return !unicode.IsLower(r)
}
