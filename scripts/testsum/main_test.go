package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// in is an input named name holding the JSON stream js.
func in(name, js string) input { return input{name: name, r: strings.NewReader(js)} }

const stream = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"ok\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: no IPVS on this kernel\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p","Elapsed":1.5}
`

// run runs summarize and returns whether the run was judged good, and
// what it printed.
func run(t *testing.T, inputs ...input) (bool, string) {
	t.Helper()
	var out bytes.Buffer
	ok := summarize(&out, inputs...)
	return ok, out.String()
}

func wantLines(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}

// closing returns the summary's last line.
func closing(got string) string {
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestSummaryCountsAndNamesSkips(t *testing.T) {
	ok, got := run(t, in("unit.json", stream))
	if !ok {
		t.Fatalf("a passing run was judged bad:\n%s", got)
	}
	wantLines(t, got, "PASS p (1.5s)", "Skipped (not passed):", "p TestB: b_test.go:9: no IPVS on this kernel")
	if !strings.HasSuffix(got, "\n1 passed, 0 failed, 1 skipped\n") {
		t.Errorf("the closing line is not last:\n%s", got)
	}
}

func TestFailureAndBuildErrorAreBad(t *testing.T) {
	fail := `{"Action":"output","Package":"p","Test":"TestC","Output":"boom\n"}
{"Action":"fail","Package":"p","Test":"TestC"}
`
	ok, got := run(t, in("a.json", stream), in("b.json", fail))
	if ok {
		t.Error("a failed test was judged good")
	}
	wantLines(t, got, "--- FAIL p TestC (b.json)\n    boom")
	if ok, got := run(t, in("a.json", "# p\n./x.go:1: syntax error\n"+stream)); ok {
		t.Errorf("a build error was judged good:\n%s", got)
	}
}

func TestNoTestIsBad(t *testing.T) {
	if ok, _ := run(t, in("a.json", `{"Action":"skip","Package":"p","Elapsed":0}`+"\n")); ok {
		t.Error("a run with no test was judged good")
	}
	if ok, got := run(t, in("a.json", stream), in("empty.json", "")); ok || !strings.Contains(got, "empty.json holds no go test events") {
		t.Errorf("an empty input was judged good:\n%s", got)
	}
}

// A package that fails with no failed test is one failure: it was one
// before (the run was bad), and now the closing line says so too.
func TestPackageFailureWithoutTestsIsBad(t *testing.T) {
	build := `{"ImportPath":"q","Action":"build-output","Output":"q/x.go:3:1: syntax error\n"}
{"Action":"start","Package":"q"}
{"Action":"output","Package":"q","Output":"FAIL\tq [build failed]\n"}
{"Action":"fail","Package":"q","Elapsed":0,"FailedBuild":"q"}
`
	ok, got := run(t, in("a.json", stream), in("b.json", build))
	if ok {
		t.Errorf("a package that failed to build was judged good:\n%s", got)
	}
	wantLines(t, got, "syntax error", "--- FAIL q (b.json): the package failed with no failed test")
	if c := closing(got); c != "1 passed, 1 failed, 1 skipped" {
		t.Errorf("closing line %q, want the build failure counted", c)
	}
}

func TestGinkgoSuiteCountsItsSpecs(t *testing.T) {
	suite := `{"Action":"run","Package":"e","Test":"TestE2E"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"Ran 3 of 5 Specs in 10.0 seconds\n"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"SUCCESS! -- 3 Passed | 0 Failed | 0 Pending | 2 Skipped\n"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"NOT RUN (not a pass): Quorum loses a leader: needs 3 managers; swarm-3 has 1\n"}
{"Action":"pass","Package":"e","Test":"TestE2E"}
{"Action":"pass","Package":"e"}
`
	ok, got := run(t, in("e2e-swarm-3.json", suite))
	if !ok {
		t.Fatalf("a passing suite was judged bad:\n%s", got)
	}
	wantLines(t, got, "e TestE2E: spec Quorum loses a leader: needs 3 managers; swarm-3 has 1")
	if c := closing(got); c != "3 passed, 0 failed, 2 skipped" {
		t.Errorf("closing line %q", c)
	}

	// One suite per topology: each input's specs count.
	if _, got := run(t, in("e2e-swarm-3.json", suite), in("e2e-vote-6.json", suite)); closing(got) != "6 passed, 0 failed, 4 skipped" {
		t.Errorf("two runs of the suite counted wrong:\n%s", got)
	}

	failing := strings.ReplaceAll(strings.ReplaceAll(suite, "SUCCESS! -- 3 Passed | 0 Failed", "FAIL! -- 2 Passed | 1 Failed"), `"Action":"pass"`, `"Action":"fail"`)
	ok, got = run(t, in("e2e-swarm-3.json", failing))
	if ok {
		t.Error("a failing suite was judged good")
	}
	if c := closing(got); c != "2 passed, 1 failed, 2 skipped" {
		t.Errorf("failing suite counted wrong:\n%s", got)
	}
}

// timedOut is what go test -json writes when -timeout kills a package: the
// panic goes to the output of the deepest test running, and no test nor
// subtest that was running gets an end event. (Recorded from a real run.)
const timedOut = `{"Action":"start","Package":"tt/p"}
{"Action":"run","Package":"tt/p","Test":"TestA"}
{"Action":"output","Package":"tt/p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"tt/p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"tt/p","Test":"TestA","Elapsed":0}
{"Action":"run","Package":"tt/p","Test":"TestSlow"}
{"Action":"output","Package":"tt/p","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow","Output":"    slow_test.go:9: waiting for the swarm\n"}
{"Action":"run","Package":"tt/p","Test":"TestSlow/inner"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"=== RUN   TestSlow/inner\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"panic: test timed out after 2s\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"\trunning tests:\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"\t\tTestSlow (2s)\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"\t\tTestSlow/inner (2s)\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"goroutine 17 [running]:\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"testing.(*M).startAlarm.func1()\n"}
{"Action":"output","Package":"tt/p","Test":"TestSlow/inner","Output":"\t/usr/local/go/src/testing/testing.go:2802 +0x354\n"}
{"Action":"output","Package":"tt/p","Output":"FAIL\ttt/p\t2.006s\n"}
{"Action":"fail","Package":"tt/p","Elapsed":2.007}
`

func TestTimedOutTestIsOneFailureByName(t *testing.T) {
	ok, got := run(t, in("unit.json", timedOut))
	if ok {
		t.Errorf("a timed-out run was judged good:\n%s", got)
	}
	wantLines(t, got,
		"--- FAIL tt/p TestSlow (unit.json): did not finish: panic: test timed out after 2s\n",
		"running tests:\n      TestSlow (2s)\n      TestSlow/inner (2s)\n",
		"slow_test.go:9: waiting for the swarm",
		"--- FAIL tt/p TestSlow/inner (unit.json): did not finish (see TestSlow)",
		"Subtests, counted apart (not in the last line): 0 passed, 1 failed, 0 skipped",
	)
	if c := closing(got); c != "1 passed, 1 failed, 0 skipped" {
		t.Errorf("closing line %q, want TestA passed and TestSlow failed", c)
	}
	if strings.Contains(got, "goroutine 17") {
		t.Errorf("the goroutine dump is printed:\n%s", got)
	}
	if strings.Contains(got, "the package failed with no failed test") {
		t.Errorf("the package failure is counted apart from its timed-out test:\n%s", got)
	}
}

// The e2e suite killed by -timeout: Ginkgo prints no tally; the spec lines
// of e2e/progress_test.go name the spec that was running.
const e2eTimedOut = `{"Action":"start","Package":"github.com/swarmlab/swarmlab/e2e"}
{"Action":"run","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"=== RUN   TestE2E\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"Running Suite: swarmlab e2e - /work/main/e2e\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"Will run 15 of 15 specs\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"e2e: spec started: Scaling runs as many tasks as asked, 1 then 5 then 2, and the edge follows\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"• [41.203 seconds]\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"e2e: spec ended: passed: Scaling runs as many tasks as asked, 1 then 5 then 2, and the edge follows\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"e2e: spec started: Quorum keeps a leader, and answers management calls, after losing 1 of 3 managers\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"e2e: spec ended: skipped: Quorum keeps a leader, and answers management calls, after losing 1 of 3 managers\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"e2e: spec started: Failover runs a killed worker's tasks on the survivors while the app keeps answering (at most 2 requests fail), and uses the worker again once it is back\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"  STEP: killing node w1 @ 12/01/26 21:40:02.113\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"panic: test timed out after 30m0s\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"\trunning tests:\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"\t\tTestE2E (30m0s)\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Test":"TestE2E","Output":"goroutine 187 [running]:\n"}
{"Action":"output","Package":"github.com/swarmlab/swarmlab/e2e","Output":"FAIL\tgithub.com/swarmlab/swarmlab/e2e\t1800.021s\n"}
{"Action":"fail","Package":"github.com/swarmlab/swarmlab/e2e","Elapsed":1800.021}
`

func TestTimedOutSuiteNamesTheRunningSpec(t *testing.T) {
	ok, got := run(t, in("e2e-swarm-3.json", e2eTimedOut))
	if ok {
		t.Errorf("a timed-out suite was judged good:\n%s", got)
	}
	wantLines(t, got,
		"--- FAIL github.com/swarmlab/swarmlab/e2e TestE2E (e2e-swarm-3.json): did not finish: panic: test timed out after 30m0s\n",
		"      TestE2E (30m0s)\n",
		"    the spec running: Failover runs a killed worker's tasks on the survivors while the app keeps answering (at most 2 requests fail), and uses the worker again once it is back\n",
		"the specs that had ended: 1 passed, 0 failed, 1 skipped (counted)",
		"STEP: killing node w1",
	)
	if c := closing(got); c != "1 passed, 1 failed, 1 skipped" {
		t.Errorf("closing line %q, want the spec that ended passed, the running one failed", c)
	}
}

const subtests = `{"Action":"run","Package":"w","Test":"TestPages"}
{"Action":"run","Package":"w","Test":"TestPages/01-look-around"}
{"Action":"pass","Package":"w","Test":"TestPages/01-look-around"}
{"Action":"run","Package":"w","Test":"TestPages/02-scale"}
{"Action":"pass","Package":"w","Test":"TestPages/02-scale"}
{"Action":"run","Package":"w","Test":"TestPages/03-quorum"}
{"Action":"output","Package":"w","Test":"TestPages/03-quorum","Output":"    workshop_test.go:93: needs swarm-ha\n"}
{"Action":"skip","Package":"w","Test":"TestPages/03-quorum"}
{"Action":"pass","Package":"w","Test":"TestPages"}
{"Action":"pass","Package":"w"}
`

// Subtests are counted apart: three pages are one test.
func TestSubtestsCountedApart(t *testing.T) {
	ok, got := run(t, in("workshop.json", subtests))
	if !ok {
		t.Fatalf("judged bad:\n%s", got)
	}
	wantLines(t, got,
		"Subtests, counted apart (not in the last line): 2 passed, 0 failed, 1 skipped\n",
		"The last line counts top-level tests (1 passed, 0 failed, 0 skipped), e2e specs (0 passed, 0 failed, 0 skipped)",
		"w TestPages/03-quorum: workshop_test.go:93: needs swarm-ha",
	)
	if c := closing(got); c != "1 passed, 0 failed, 0 skipped" {
		t.Errorf("closing line %q, want the one top-level test", c)
	}
}

// The integration step once ran every unit test again: the same package
// and test in two inputs is one test.
func TestSameTestInTwoInputsCountedOnce(t *testing.T) {
	ok, got := run(t, in("unit.json", stream), in("integration.json", stream))
	if !ok {
		t.Fatalf("judged bad:\n%s", got)
	}
	wantLines(t, got, "Counted once (the same test ran more than once; failed if any run failed):",
		"p TestA (unit.json: pass, integration.json: pass)")
	if c := closing(got); c != "1 passed, 0 failed, 1 skipped" {
		t.Errorf("closing line %q, want TestA and TestB once each", c)
	}

	// Failed in one of them: one failure.
	failed := strings.Replace(stream, `{"Action":"pass","Package":"p","Test":"TestA"}`, `{"Action":"fail","Package":"p","Test":"TestA"}`, 1)
	ok, got = run(t, in("unit.json", stream), in("integration.json", failed))
	if ok || closing(got) != "0 passed, 1 failed, 1 skipped" || !strings.Contains(got, "--- FAIL p TestA (integration.json)") {
		t.Errorf("a test that failed in one of two inputs:\n%s", got)
	}
}

// go test's stderr is a file of its own: "go: downloading" there is not bad
// input, and it is shown only when something failed.
func TestStderrFile(t *testing.T) {
	dir := t.TempDir()
	json := filepath.Join(dir, "unit.json")
	if err := os.WriteFile(json, []byte(stream), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := "go: downloading github.com/onsi/ginkgo/v2 v2.28.1\ngo: downloading go.yaml.in/yaml/v3 v3.0.4\n"
	if err := os.WriteFile(filepath.Join(dir, "unit.stderr"), []byte(stderr), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(json)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ok, got := run(t, input{name: "unit.json", r: f, stderr: stderr})
	if !ok {
		t.Errorf("a stray go: downloading line on stderr made the run bad:\n%s", got)
	}
	wantLines(t, got, "unit.stderr: 2 lines of stderr, not shown (nothing in unit.json failed)")
	if strings.Contains(got, "go: downloading") {
		t.Errorf("stderr shown though nothing failed:\n%s", got)
	}

	// The same line inside the JSON stream is bad input, as before: it is
	// how build errors printed as text are caught.
	if ok, _ := run(t, in("unit.json", "go: downloading x v1\n"+stream)); ok {
		t.Error("a non-JSON line in the JSON stream was judged good")
	}

	// Something failed: the tail is shown.
	fail := stream + `{"Action":"fail","Package":"p","Test":"TestC"}` + "\n"
	_, got = run(t, input{name: "unit.json", r: strings.NewReader(fail), stderr: stderr})
	wantLines(t, got, "unit.stderr (last 2 of 2 lines; something in unit.json failed):\n    go: downloading github.com/onsi/ginkgo/v2")
}

const e2eRun = `{"Action":"run","Package":"e","Test":"TestE2E"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"NOT RUN (not a pass): Vote counts every vote: not run on vote-6: needs the vote stack\n"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"REQUIRED SPEC NOT RUN: vote: Vote counts every vote (skipped: not run on vote-6: needs the vote stack)\n"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"e2e: required labels on vote-6: failover, vote: 1 of 2 ran\n"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"BRING-UP RETRIED: vote-6: swarm init on manager: context deadline exceeded\n"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"SUCCESS! -- 14 Passed | 0 Failed | 0 Pending | 1 Skipped\n"}
{"Action":"pass","Package":"e","Test":"TestE2E"}
{"Action":"pass","Package":"e"}
`

// go test passes a run whose required spec skipped itself; testsum does not.
func TestRequiredSpecNotRunIsAFailure(t *testing.T) {
	ok, got := run(t, in("e2e-vote-6.json", e2eRun))
	if ok {
		t.Errorf("a run with a required spec not run was judged good:\n%s", got)
	}
	wantLines(t, got, "Required specs not run (each one failure):\n  e2e-vote-6.json (e TestE2E): vote: Vote counts every vote (skipped: not run on vote-6: needs the vote stack)\n",
		"required specs not run (1 failed)")
	if c := closing(got); c != "14 passed, 1 failed, 1 skipped" {
		t.Errorf("closing line %q", c)
	}
}

func TestBringUpRetriedIsPrinted(t *testing.T) {
	retried := strings.Replace(e2eRun, `{"Action":"output","Package":"e","Test":"TestE2E","Output":"REQUIRED SPEC NOT RUN: vote: Vote counts every vote (skipped: not run on vote-6: needs the vote stack)\n"}`+"\n", "", 1)
	ok, got := run(t, in("e2e-vote-6.json", retried))
	if !ok {
		t.Errorf("a retried bring-up is not a failure:\n%s", got)
	}
	wantLines(t, got, "Bring-up retried (the lab came up on the second try; not failures):\n  e2e-vote-6.json: vote-6: swarm init on manager: context deadline exceeded\n")
	if c := closing(got); c != "14 passed, 0 failed, 1 skipped" {
		t.Errorf("closing line %q", c)
	}
}

// A required-spec line in a failing test's message (indented, as go test
// prints t.Errorf) is not the e2e suite's.
func TestIndentedMarkerLinesAreNotCounted(t *testing.T) {
	js := stream + `{"Action":"run","Package":"s","Test":"TestX"}
{"Action":"output","Package":"s","Test":"TestX","Output":"    x_test.go:3: got\n        REQUIRED SPEC NOT RUN: vote: ...\n"}
{"Action":"pass","Package":"s","Test":"TestX"}
{"Action":"pass","Package":"s"}
`
	if ok, got := run(t, in("unit.json", js)); !ok || strings.Contains(got, "Required specs not run") {
		t.Errorf("an indented marker line was counted:\n%s", got)
	}
}
