package main

import (
	"bytes"
	"strings"
	"testing"
)

const stream = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"ok\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: no IPVS on this kernel\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p","Elapsed":1.5}
`

func TestSummaryCountsAndNamesSkips(t *testing.T) {
	var out bytes.Buffer
	if !summarize(&out, strings.NewReader(stream)) {
		t.Fatalf("a passing run was judged bad:\n%s", out.String())
	}
	got := out.String()
	for _, want := range []string{"PASS p (1.5s)", "Skipped (not passed):", "p TestB: b_test.go:9: no IPVS on this kernel", "1 passed, 0 failed, 1 skipped\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasSuffix(got, "1 passed, 0 failed, 1 skipped\n") {
		t.Errorf("the closing line is not last:\n%s", got)
	}
}

func TestFailureAndBuildErrorAreBad(t *testing.T) {
	fail := `{"Action":"output","Package":"p","Test":"TestC","Output":"boom\n"}
{"Action":"fail","Package":"p","Test":"TestC"}
`
	var out bytes.Buffer
	if summarize(&out, strings.NewReader(stream), strings.NewReader(fail)) {
		t.Error("a failed test was judged good")
	}
	if !strings.Contains(out.String(), "--- FAIL p TestC\n    boom") {
		t.Errorf("failure output missing:\n%s", out.String())
	}
	out.Reset()
	if summarize(&out, strings.NewReader("# p\n./x.go:1: syntax error\n"+stream)) {
		t.Error("a build error was judged good")
	}
}

func TestNoTestIsBad(t *testing.T) {
	var out bytes.Buffer
	if summarize(&out, strings.NewReader(`{"Action":"skip","Package":"p","Elapsed":0}`+"\n")) {
		t.Error("a run with no test was judged good")
	}
}

func TestPackageFailureWithoutTestsIsBad(t *testing.T) {
	build := `{"ImportPath":"q","Action":"build-output","Output":"q/x.go:3:1: syntax error\n"}
{"Action":"fail","Package":"q","Elapsed":0,"FailedBuild":"q"}
`
	var out bytes.Buffer
	if summarize(&out, strings.NewReader(stream), strings.NewReader(build)) {
		t.Errorf("a package that failed to build was judged good:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "syntax error") {
		t.Errorf("build output not shown:\n%s", out.String())
	}
}

func TestGinkgoSuiteCountsItsSpecs(t *testing.T) {
	suite := `{"Action":"run","Package":"e","Test":"TestE2E"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"Ran 3 of 5 Specs in 10.0 seconds\n"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"SUCCESS! -- 3 Passed | 0 Failed | 0 Pending | 2 Skipped\n"}
{"Action":"output","Package":"e","Test":"TestE2E","Output":"NOT RUN (not a pass): Quorum loses a leader: needs 3 managers; swarm-3 has 1\n"}
{"Action":"pass","Package":"e","Test":"TestE2E"}
`
	var out bytes.Buffer
	if !summarize(&out, strings.NewReader(suite)) {
		t.Fatalf("a passing suite was judged bad:\n%s", out.String())
	}
	got := out.String()
	for _, want := range []string{"e TestE2E: spec Quorum loses a leader: needs 3 managers; swarm-3 has 1", "3 passed, 0 failed, 2 skipped\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}

	failing := strings.ReplaceAll(strings.ReplaceAll(suite, "SUCCESS! -- 3 Passed | 0 Failed", "FAIL! -- 2 Passed | 1 Failed"), `"Action":"pass"`, `"Action":"fail"`)
	out.Reset()
	if summarize(&out, strings.NewReader(failing)) {
		t.Error("a failing suite was judged good")
	}
	if !strings.Contains(out.String(), "2 passed, 1 failed, 2 skipped") {
		t.Errorf("failing suite counted wrong:\n%s", out.String())
	}
}
