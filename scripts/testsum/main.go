// Command testsum reads `go test -json` streams and prints what a person
// needs: each package's result, the output of every failed test, the name
// and reason of every skipped test, and one closing line
// "N passed, N failed, N skipped". It exits 1 if anything failed, if no
// test ran at all, or if an input is not go test's JSON.
//
//	testsum unit.json integration.json e2e-swarm-3.json ...
//
// What is counted, in the closing line:
//
//   - each top-level test, once: the same package and test in two inputs
//     (or twice in one) is one test, failed if any run failed, and the
//     summary says so under "Counted once";
//   - a Ginkgo suite's specs instead of the suite's test: where a test's
//     output carries Ginkgo's tally ("9 Passed | 0 Failed | 0 Pending | 6
//     Skipped") its specs are counted, once per input (each input is a run
//     on its own topology); the specs the e2e suite reports as "NOT RUN (not
//     a pass): name: why" are listed with the skipped tests;
//   - a test that never ended (go test's -timeout panicked, or the stream
//     stops) is one failed test, with the panic line and the tests go test
//     said were running; for the e2e suite, which prints
//     "e2e: spec started: <spec>" and "e2e: spec ended: <state>: <spec>"
//     (e2e/progress_test.go), also the spec that was running, and the specs
//     that had ended are counted;
//   - every "REQUIRED SPEC NOT RUN: ..." line the e2e suite prints (a label
//     the topology's e2e.require lists, none of whose specs ran) is one
//     failure: go test passes such a run, testsum does not;
//   - a package that failed with no failed test (a build failure, a panic
//     or an exit outside a test) is one failure.
//
// Subtests are counted apart, on the line before the closing one, and not
// in it: a failed subtest fails its parent, which is counted. Failed and
// skipped subtests are still listed by name.
//
// "BRING-UP RETRIED: <topology>: <why>" lines (the e2e suite needed a
// second bring-up) are listed under their own heading; they are not
// failures.
//
// For an input X.json, testsum reads go test's stderr from X.stderr if it
// exists: its last lines are printed when something in X failed (or X is
// not usable), else only how many lines it has. Stderr is not JSON and is
// not parsed: "go: downloading" lines there are harmless, while a line in
// X.json that is not JSON (a build error printed as text) makes the run bad.
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

// Lines the e2e suite prints for testsum (at the start of a line).
const (
	notRunPrefix      = "NOT RUN (not a pass): "
	requiredPrefix    = "REQUIRED SPEC NOT RUN: "
	retriedPrefix     = "BRING-UP RETRIED: "
	specStartedPrefix = "e2e: spec started: "
	specEndedPrefix   = "e2e: spec ended: "
)

// panicLine starts go test's panic (a -timeout's "panic: test timed out
// after 30m0s", or a test's own panic).
var panicLine = regexp.MustCompile(`(?m)^panic: `)

// stderrTail is how many lines of a stderr file are shown.
const stderrTail = 20

// suite is what a Ginkgo suite's output says about its specs.
type suite struct {
	passed, failed, skipped int
	tally                   bool   // Ginkgo printed its closing tally
	progress                bool   // the suite printed spec start/end lines
	running                 string // the last spec that started and did not end
	notRun                  []string
}

func (s suite) ok() bool { return s.tally || s.progress }

// readSuite reads a test's output as a Ginkgo suite's.
func readSuite(out string) suite {
	var s suite
	var open []string // specs started and not ended, in order
	var ended [3]int  // passed, failed, skipped, from the end lines
	for _, line := range strings.Split(out, "\n") {
		if rest, found := strings.CutPrefix(strings.TrimSpace(line), notRunPrefix); found {
			s.notRun = append(s.notRun, rest)
		}
		if name, found := strings.CutPrefix(line, specStartedPrefix); found {
			s.progress = true
			open = append(open, name)
		}
		if rest, found := strings.CutPrefix(line, specEndedPrefix); found {
			s.progress = true
			state, name, _ := strings.Cut(rest, ": ")
			for i := len(open) - 1; i >= 0; i-- {
				if open[i] == name {
					open = append(open[:i], open[i+1:]...)
					break
				}
			}
			switch state {
			case "passed":
				ended[0]++
			case "skipped", "pending":
				ended[2]++
			default: // failed, timedout, panicked, interrupted, aborted
				ended[1]++
			}
		}
	}
	if len(open) > 0 {
		s.running = open[len(open)-1]
	}
	if m := ginkgoTally.FindAllStringSubmatch(out, -1); m != nil {
		n := func(i int) int { v, _ := strconv.Atoi(m[len(m)-1][i]); return v }
		s.tally = true
		s.passed, s.failed, s.skipped = n(1), n(2), n(3)+n(4)
	} else {
		s.passed, s.failed, s.skipped = ended[0], ended[1], ended[2]
	}
	return s
}

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// input is one go test -json stream, and the stderr of the same go test.
type input struct {
	name   string
	r      io.Reader
	stderr string
}

func main() {
	var inputs []input
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(1)
		}
		defer f.Close()
		in := input{name: path, r: f}
		if base, ok := strings.CutSuffix(path, ".json"); ok {
			if data, err := os.ReadFile(base + ".stderr"); err == nil {
				in.stderr = string(data)
			}
		}
		inputs = append(inputs, in)
	}
	if !summarize(os.Stdout, inputs...) {
		os.Exit(1)
	}
}

// testRun is one run of one test in one input.
type testRun struct {
	input  string
	pkg    string
	name   string
	action string // pass, fail, skip; "" if it never ended
	out    strings.Builder
	// failText is what the summary says of a run that never ended.
	failText string
}

// counts are passed, failed, skipped.
type counts struct{ passed, failed, skipped int }

func (c counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.passed, c.failed, c.skipped)
}

// merged is one test or subtest over every input it ran in.
type merged struct {
	pkg, name string
	runs      []*testRun
}

// summary is what summarize gathers over all inputs.
type summary struct {
	tests, specs, subtests counts
	required, pkgFailures  int
	failures, skips        []string
	requiredLines, retried []string
	notes                  []string // stderr notes and tails
	once                   map[string]*merged
	onceOrder              []string
	bad                    bool
}

// summarize prints the summary of the go test -json streams and reports
// whether the run is good: something passed, nothing failed, and every line
// of every stream was a test event.
func summarize(w io.Writer, inputs ...input) bool {
	s := &summary{once: map[string]*merged{}}
	for _, in := range inputs {
		s.read(w, in)
	}
	s.merge()

	for _, f := range s.failures {
		fmt.Fprint(w, f)
	}
	if len(s.skips) > 0 {
		sort.Strings(s.skips)
		fmt.Fprintln(w, "Skipped (not passed):")
		for _, l := range s.skips {
			fmt.Fprintln(w, "  "+l)
		}
	}
	var twice []string
	subTwice := 0
	for _, k := range s.onceOrder {
		if m := s.once[k]; len(m.runs) > 1 && strings.Contains(m.name, "/") {
			subTwice++
		} else if len(m.runs) > 1 {
			var where []string
			for _, r := range m.runs {
				where = append(where, fmt.Sprintf("%s: %s", r.input, verdict(r.action)))
			}
			twice = append(twice, fmt.Sprintf("%s %s (%s)", m.pkg, m.name, strings.Join(where, ", ")))
		}
	}
	if len(twice) > 0 {
		fmt.Fprintln(w, "Counted once (the same test ran more than once; failed if any run failed):")
		for _, l := range twice {
			fmt.Fprintln(w, "  "+l)
		}
		if subTwice > 0 {
			fmt.Fprintf(w, "  and %s of theirs, likewise\n", plural(subTwice, "subtest"))
		}
	}
	if len(s.retried) > 0 {
		fmt.Fprintln(w, "Bring-up retried (the lab came up on the second try; not failures):")
		for _, l := range s.retried {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if len(s.requiredLines) > 0 {
		fmt.Fprintln(w, "Required specs not run (each one failure):")
		for _, l := range s.requiredLines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	for _, n := range s.notes {
		fmt.Fprint(w, n)
	}

	total := counts{
		passed:  s.tests.passed + s.specs.passed,
		failed:  s.tests.failed + s.specs.failed + s.required + s.pkgFailures,
		skipped: s.tests.skipped + s.specs.skipped,
	}
	fmt.Fprintf(w, "Subtests, counted apart (not in the last line): %s\n", s.subtests)
	fmt.Fprintf(w, "The last line counts top-level tests (%s), e2e specs (%s), required specs not run (%d failed) and packages that failed outside a test (%d failed)\n",
		s.tests, s.specs, s.required, s.pkgFailures)
	fmt.Fprintf(w, "%s\n", total)
	return total.failed == 0 && total.passed > 0 && !s.bad
}

// read reads one input: Ginkgo suites, unfinished tests, required-spec and
// bring-up lines and package failures are counted here; plain tests are
// kept for merge, which counts each once over all inputs.
func (s *summary) read(w io.Writer, in input) {
	runs := map[string]*testRun{}
	var order []string
	pkgOut := map[string]*strings.Builder{} // all of a package's output
	pkgEnd := map[string]string{}
	var pkgs []string
	events, badLines := 0, 0

	sc := bufio.NewScanner(in.r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			// Build errors and the like printed as plain text.
			fmt.Fprintln(w, sc.Text())
			badLines++
			continue
		}
		events++
		if e.Package != "" && pkgOut[e.Package] == nil {
			pkgOut[e.Package] = &strings.Builder{}
			pkgs = append(pkgs, e.Package)
		}
		key := e.Package + " " + e.Test
		r := runs[key]
		if e.Test != "" && r == nil {
			r = &testRun{input: in.name, pkg: e.Package, name: e.Test}
			runs[key] = r
			order = append(order, key)
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "output":
			if e.Package != "" {
				pkgOut[e.Package].WriteString(e.Output)
			}
			if r != nil {
				r.out.WriteString(e.Output)
			}
		case "pass", "fail", "skip":
			if e.Test != "" {
				r.action = e.Action
				continue
			}
			pkgEnd[e.Package] = e.Action
			v := strings.ToUpper(e.Action)
			if e.Action == "skip" {
				v = "----" // go test's word for "no test files"
			}
			fmt.Fprintf(w, "%-4s %s (%.1fs)\n", v, e.Package, e.Elapsed)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(w, "testsum: %s: %v\n", in.name, err)
		badLines++
	}

	failedBefore := s.failedSoFar()
	pkgFailed := map[string]bool{} // a test of the package failed or never ended
	for _, key := range order {
		r := runs[key]
		if r.action == "" || r.action == "fail" {
			pkgFailed[r.pkg] = true
		}
		if strings.Contains(r.name, "/") {
			s.keep(r)
			continue
		}
		out := r.out.String()
		for _, line := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(line, requiredPrefix); ok {
				s.required++
				s.requiredLines = append(s.requiredLines, fmt.Sprintf("%s (%s %s): %s", in.name, r.pkg, r.name, rest))
			}
			if rest, ok := strings.CutPrefix(line, retriedPrefix); ok {
				s.retried = append(s.retried, fmt.Sprintf("%s: %s", in.name, rest))
			}
		}
		st := readSuite(out)
		switch {
		case r.action == "":
			s.unfinished(r, st, pkgOut[r.pkg].String())
		case st.ok():
			for _, nr := range st.notRun {
				s.skips = append(s.skips, fmt.Sprintf("%s %s: spec %s", r.pkg, r.name, nr))
			}
			s.specs.passed += st.passed
			s.specs.skipped += st.skipped
			s.specs.failed += st.failed
			if r.action == "fail" {
				// A suite can fail outside its specs (BeforeSuite,
				// AfterSuite): that still counts.
				if st.failed == 0 {
					s.specs.failed++
				}
				s.failures = append(s.failures, fmt.Sprintf("--- FAIL %s %s (%s)\n%s", r.pkg, r.name, in.name, indent(out)))
			}
		default:
			s.keep(r)
		}
	}
	for _, p := range pkgs {
		end, ended := pkgEnd[p]
		switch {
		case pkgFailed[p]:
		case !ended:
			s.pkgFailures++
			s.failures = append(s.failures, fmt.Sprintf("--- FAIL %s (%s): no result: the stream ends before the package does\n%s", p, in.name, indent(tail(pkgOut[p].String(), 30))))
		case end == "fail":
			s.pkgFailures++
			s.failures = append(s.failures, fmt.Sprintf("--- FAIL %s (%s): the package failed with no failed test (a build failure, or a panic or exit outside a test)\n%s", p, in.name, indent(pkgOut[p].String())))
		}
	}

	bad := badLines > 0 || events == 0
	if bad {
		s.bad = true
		switch {
		case events == 0:
			fmt.Fprintf(w, "testsum: %s holds no go test events\n", in.name)
		default:
			fmt.Fprintf(w, "testsum: %s: %d lines are not go test JSON (printed above)\n", in.name, badLines)
		}
	}
	s.stderrNote(in, bad || s.failedSoFar() > failedBefore || len(pkgFailed) > 0)
}

// failedSoFar counts the failures read so far, plain tests included.
func (s *summary) failedSoFar() int {
	n := s.specs.failed + s.required + s.pkgFailures + s.tests.failed
	for _, m := range s.once {
		for _, r := range m.runs {
			if r.action != "pass" && r.action != "skip" {
				n++
			}
		}
	}
	return n
}

// stderrNote shows the input's stderr: its tail if the input failed, else
// its size.
func (s *summary) stderrNote(in input, failed bool) {
	text := strings.TrimRight(in.stderr, "\n")
	if text == "" {
		return
	}
	name := strings.TrimSuffix(in.name, ".json") + ".stderr"
	lines := strings.Count(text, "\n") + 1
	if !failed {
		s.notes = append(s.notes, fmt.Sprintf("%s: %s of stderr, not shown (nothing in %s failed)\n", name, plural(lines, "line"), in.name))
		return
	}
	s.notes = append(s.notes, fmt.Sprintf("%s (last %d of %d lines; something in %s failed):\n%s", name, min(lines, stderrTail), lines, in.name, indent(tail(text, stderrTail))))
}

// unfinished counts a top-level test that has no result: go test's -timeout
// panicked while it ran, or the stream was cut.
func (s *summary) unfinished(r *testRun, st suite, pkgOut string) {
	var b strings.Builder
	out := r.out.String()
	panicked, running := timeoutPanic(pkgOut)
	if panicked != "" {
		fmt.Fprintf(&b, "--- FAIL %s %s (%s): did not finish: %s\n", r.pkg, r.name, r.input, panicked)
		if len(running) > 0 {
			b.WriteString("    running tests:\n")
			for _, t := range running {
				b.WriteString("      " + t + "\n")
			}
		}
	} else {
		fmt.Fprintf(&b, "--- FAIL %s %s (%s): did not finish: the stream ends with no result for it (was go test killed?)\n", r.pkg, r.name, r.input)
	}
	if loc := panicLine.FindStringIndex(out); loc != nil {
		out = out[:loc[0]] // the goroutine dump is in the file
	}
	if st.ok() {
		if st.running != "" {
			fmt.Fprintf(&b, "    the spec running: %s\n", st.running)
		} else {
			b.WriteString("    no spec was running (it stopped outside the specs)\n")
		}
		fmt.Fprintf(&b, "    the specs that had ended: %s (counted)\n", counts{st.passed, st.failed, st.skipped})
	}
	if last := tail(out, 30); last != "" {
		b.WriteString("    its last lines:\n")
		b.WriteString(indent(indent(last)))
	}
	if !st.ok() {
		// A plain test: counted once with its other runs, if any.
		r.failText = b.String()
		s.keep(r)
		return
	}
	s.specs.passed += st.passed
	s.specs.skipped += st.skipped
	s.specs.failed += st.failed
	if st.running != "" || st.failed == 0 {
		s.specs.failed++
	}
	s.failures = append(s.failures, b.String())
}

// timeoutPanic finds go test's panic in a package's output, and the tests
// it says were running.
func timeoutPanic(out string) (line string, running []string) {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "panic: ") {
			continue
		}
		line = l
		for j := i + 1; j < len(lines); j++ {
			t := strings.TrimSpace(lines[j])
			switch {
			case t == "running tests:":
			case strings.HasPrefix(lines[j], "\t\t") && t != "":
				running = append(running, t)
			default:
				return line, running
			}
		}
		return line, running
	}
	return "", nil
}

// keep records a plain test's or subtest's run, for merge.
func (s *summary) keep(r *testRun) {
	key := r.pkg + " " + r.name
	m := s.once[key]
	if m == nil {
		m = &merged{pkg: r.pkg, name: r.name}
		s.once[key] = m
		s.onceOrder = append(s.onceOrder, key)
	}
	m.runs = append(m.runs, r)
}

// merge counts each plain test and subtest once, whatever the number of
// inputs it ran in: failed if a run failed (or never ended), else passed if
// a run passed, else skipped.
func (s *summary) merge() {
	for _, key := range s.onceOrder {
		m := s.once[key]
		var failed, passed, skipped *testRun
		for _, r := range m.runs {
			switch r.action {
			case "pass":
				passed = cmpOr(passed, r)
			case "skip":
				skipped = cmpOr(skipped, r)
			default:
				failed = cmpOr(failed, r)
			}
		}
		c := &s.tests
		if strings.Contains(m.name, "/") {
			c = &s.subtests
		}
		switch {
		case failed != nil:
			c.failed++
			if failed.failText != "" {
				s.failures = append(s.failures, failed.failText)
				break
			}
			if failed.action == "" {
				// Its output ends in go test's goroutine dump; the
				// top-level test's entry has the panic.
				top, _, _ := strings.Cut(m.name, "/")
				s.failures = append(s.failures, fmt.Sprintf("--- FAIL %s %s (%s): did not finish (see %s)\n", m.pkg, m.name, failed.input, top))
				break
			}
			s.failures = append(s.failures, fmt.Sprintf("--- FAIL %s %s (%s)\n%s", m.pkg, m.name, failed.input, indent(failed.out.String())))
		case passed != nil:
			c.passed++
		default:
			c.skipped++
			s.skips = append(s.skips, fmt.Sprintf("%s %s: %s", m.pkg, m.name, skipReason(skipped.out.String())))
		}
	}
}

func cmpOr(a, b *testRun) *testRun {
	if a != nil {
		return a
	}
	return b
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func verdict(action string) string {
	if action == "" {
		return "did not finish"
	}
	return action
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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
