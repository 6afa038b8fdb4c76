//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
)

// One line on stdout when a spec starts and one when it ends, for
// scripts/testsum: when go test's -timeout kills the run, no Ginkgo tally
// is printed and go test reports no result for TestE2E, and these lines are
// how the summary still names the spec that was running (the last one that
// started and did not end) and counts the specs that had ended. The format
// is fixed; scripts/testsum parses it:
//
//	e2e: spec started: <full text>
//	e2e: spec ended: <state>: <full text>
//
// <state> is Ginkgo's word (passed, failed, skipped, timedout, ...), and
// the full text is on one line. Specs that do not run at all (not selected
// by a label filter or focus, or pending) print neither line.

// started counts, by full text, the specs that printed a start line and no
// end line yet.
var started = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

var _ = ReportBeforeEach(func(sr SpecReport) {
	if sr.State == types.SpecStateSkipped || sr.State == types.SpecStatePending {
		return // not selected, or pending: it will not run
	}
	name := specLine(sr.FullText())
	started.Lock()
	started.n[name]++
	started.Unlock()
	fmt.Printf("e2e: spec started: %s\n", name)
})

var _ = ReportAfterEach(func(sr SpecReport) {
	name := specLine(sr.FullText())
	started.Lock()
	ran := started.n[name] > 0
	if ran {
		started.n[name]--
	}
	started.Unlock()
	if ran {
		fmt.Printf("e2e: spec ended: %s: %s\n", sr.State, name)
	}
})

// specLine puts a spec's full text on one line.
func specLine(s string) string { return strings.Join(strings.Fields(s), " ") }
