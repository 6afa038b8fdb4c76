// Command testsum reads `go test -json` streams and prints what a person
// needs: each package's result, the output of every failed test, the name
// and reason of every skipped test, and one closing line
// "N passed, N failed, N skipped". It exits 1 if anything failed or if no
// test ran at all.
//
// A Ginkgo suite is one go test, but it holds many specs: where a test's
// output carries Ginkgo's closing tally ("9 Passed | 0 Failed | 0 Pending |
// 6 Skipped"), its specs are counted instead of the test, and the specs the
// suite reports as "NOT RUN (not a pass): name: why" are listed with the
// skipped tests.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ginkgoTally is the last line of a Ginkgo run.
var ginkgoTally = regexp.MustCompile(`(?m)^(?:SUCCESS!|FAIL!).* -- (\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`)

// notRunPrefix starts the e2e suite's line for a spec that did not run.
const notRunPrefix = "NOT RUN (not a pass): "

// specCounts returns the Ginkgo tally in a test's output, if it has one,
// and the specs it says did not run.
func specCounts(out string) (passed, failed, skipped int, notRun []string, ok bool) {
	m := ginkgoTally.FindAllStringSubmatch(out, -1)
	if m == nil {
		return 0, 0, 0, nil, false
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[len(m)-1][i]); return v }
	for _, line := range strings.Split(out, "\n") {
		if rest, found := strings.CutPrefix(strings.TrimSpace(line), notRunPrefix); found {
			notRun = append(notRun, rest)
		}
	}
	return n(1), n(2), n(3) + n(4), notRun, true
}

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	var inputs []io.Reader
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(1)
		}
		defer f.Close()
		inputs = append(inputs, f)
	}
	if !summarize(os.Stdout, inputs...) {
		os.Exit(1)
	}
}

// summarize prints the summary of the go test -json streams and reports
// whether the run is good: something passed, nothing failed, and every line
// was a test event (a build error is not).
func summarize(w io.Writer, inputs ...io.Reader) bool {
	var passed, failed, skipped int
	var failures, skips []string
	badInput, pkgFailed := false, false
	for _, in := range inputs {
		output := map[string]*strings.Builder{}
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				// Build errors and the like are printed as plain text.
				fmt.Fprintln(w, sc.Text())
				badInput = true
				continue
			}
			key := e.Package + " " + e.Test
			switch e.Action {
			case "build-output":
				fmt.Fprint(w, e.Output)
			case "output":
				if output[key] == nil {
					output[key] = &strings.Builder{}
				}
				output[key].WriteString(e.Output)
			case "pass", "fail", "skip":
				if e.Test == "" { // the package's own line
					// A package can fail with no failed test: a build
					// error, a panic outside tests, a timeout.
					pkgFailed = pkgFailed || e.Action == "fail"
					verdict := strings.ToUpper(e.Action)
					if e.Action == "skip" {
						verdict = "----" // go test's word for "no test files"
					}
					fmt.Fprintf(w, "%-4s %s (%.1fs)\n", verdict, e.Package, e.Elapsed)
					if e.Action == "fail" && output[key] != nil {
						fmt.Fprint(w, indent(output[key].String()))
					}
					continue
				}
				if p, f, sk, notRun, ok := specCounts(text(output[key])); ok {
					passed += p
					skipped += sk
					for _, nr := range notRun {
						skips = append(skips, fmt.Sprintf("%s %s: spec %s", e.Package, e.Test, nr))
					}
					if e.Action == "fail" {
						// A suite can fail outside its specs (BeforeSuite,
						// AfterSuite): that still counts.
						failed += max(f, 1)
						failures = append(failures, fmt.Sprintf("--- FAIL %s %s\n%s", e.Package, e.Test, indent(text(output[key]))))
					}
					continue
				}
				switch e.Action {
				case "pass":
					passed++
				case "fail":
					failed++
					failures = append(failures, fmt.Sprintf("--- FAIL %s %s\n%s", e.Package, e.Test, indent(text(output[key]))))
				case "skip":
					skipped++
					skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(text(output[key]))))
				}
			}
		}
	}
	for _, f := range failures {
		fmt.Fprint(w, f)
	}
	if len(skips) > 0 {
		sort.Strings(skips)
		fmt.Fprintln(w, "Skipped (not passed):")
		for _, s := range skips {
			fmt.Fprintln(w, "  "+s)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return failed == 0 && !pkgFailed && passed > 0 && !badInput
}

func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

// skipReason picks the t.Skip message out of a skipped test's output.
func skipReason(out string) string {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- SKIP") {
			continue
		}
		return line
	}
	return "(no reason given)"
}
