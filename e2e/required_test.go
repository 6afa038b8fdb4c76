//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// After the suite, two kinds of lines on stdout that scripts/testsum puts
// in its summary (both fixed formats):
//
//	REQUIRED SPEC NOT RUN: <label>: <spec> (<state>: <why>); ...
//	BRING-UP RETRIED: <topology>: <why the first bring-up failed>
//
// The first is for each Ginkgo label the topology's e2e.require lists of
// which no spec ran (passed or failed) in a run of the whole suite: a spec
// that skips itself where it should run would otherwise be reported as
// "NOT RUN (not a pass)" only, and the run would still pass. A
// ReportAfterSuite cannot fail specs, and TestE2E (e2e_suite_test.go) does
// not look at this, so go test still exits 0 for it: scripts/testsum counts
// each such line as one failure. When a label filter, a focus or a skip
// was given, or on a dry run, which specs run is the user's choice, and the
// check is not made.
//
// The second says the suite had to bring the lab up twice (see BeforeSuite):
// not a failure, but a flaky lab should not go unseen in report.json only.
var _ = ReportAfterSuite("e2e required specs and bring-up retries", func(report Report) {
	checkRequired(report)
	run.Lock()
	var retried string
	if run.bringUp != nil {
		retried = run.bringUp.FirstAttemptFailed
	}
	run.Unlock()
	if retried != "" {
		fmt.Printf("BRING-UP RETRIED: %s: %s\n", topologyLabel(), specLine(retried))
	}
})

func checkRequired(report Report) {
	if why := userSelection(report); why != "" {
		fmt.Printf("e2e: required specs not checked: %s\n", why)
		return
	}
	var e2e topology.E2E
	if sut != nil {
		e2e = sut.topo.E2E
	} else {
		// BeforeSuite failed before the lab was up: the topology is
		// still known from its file.
		path, err := topologyPath(moduleRoot(), os.Getenv(envTopology))
		if err == nil {
			var topo *topology.Topology
			if topo, _, err = topology.LoadFile(path); err == nil {
				e2e = topo.E2E
			}
		}
		if err != nil {
			fmt.Printf("e2e: required specs not checked: %s\n", specLine(err.Error()))
			return
		}
	}
	if len(e2e.Require) == 0 {
		fmt.Printf("e2e: required specs not checked: topology %s requires none (e2e.require)\n", topologyLabel())
		return
	}
	missing := e2e.Missing(specOutcomes(report.SpecReports))
	for _, m := range missing {
		fmt.Printf("REQUIRED SPEC NOT RUN: %s\n", m)
	}
	fmt.Printf("e2e: required labels on %s: %s: %d of %d ran\n", topologyLabel(),
		strings.Join(e2e.Require, ", "), len(e2e.Require)-len(missing), len(e2e.Require))
}

// userSelection says how the run was narrowed, if it was.
func userSelection(report Report) string {
	c := report.SuiteConfig
	var why []string
	if c.LabelFilter != "" && c.LabelFilter != topologyFilter {
		why = append(why, "label filter "+c.LabelFilter)
	}
	if len(c.FocusStrings)+len(c.FocusFiles) > 0 || report.SuiteHasProgrammaticFocus {
		why = append(why, "a focus")
	}
	if len(c.SkipStrings)+len(c.SkipFiles) > 0 {
		why = append(why, "a skip")
	}
	if c.DryRun {
		why = append(why, "a dry run")
	}
	if len(why) == 0 {
		return ""
	}
	return "the run was narrowed (" + strings.Join(why, ", ") + "): which specs run is the user's choice"
}

// specOutcomes turns Ginkgo's spec reports into what the required check
// reads.
func specOutcomes(reports types.SpecReports) []topology.SpecOutcome {
	reasons := beforeAllSkips(reports)
	var out []topology.SpecOutcome
	for _, sr := range reports {
		if sr.LeafNodeType != types.NodeTypeIt {
			continue
		}
		why := reasons.of(sr)
		if why == "" && sr.State == types.SpecStateSkipped {
			why = "skipped with no reason given (did BeforeSuite fail?)"
		}
		out = append(out, topology.SpecOutcome{
			Name: specLine(sr.FullText()), Labels: sr.Labels(),
			Ran:   sr.State == types.SpecStatePassed || sr.Failed(),
			State: sr.State.String(), Why: why,
		})
	}
	return out
}
