//go:build e2e

// Package e2e proves, on a real multi-node swarm, that apps survive what
// breaks clusters: lost tasks, lost and partitioned nodes, drains, scaling,
// rolling updates, and lost manager quorum.
//
//	go test -tags e2e -count=1 -timeout 30m ./e2e                      # swarm-3
//	SWARMLAB_TOPOLOGY=swarm-ha go test -tags e2e -count=1 -timeout 30m ./e2e
//	go test -tags e2e -count=1 ./e2e -ginkgo.label-filter=failover     # one capability
//
// Every file carries the build tag e2e, so that go test ./... is unit tests
// only.
//
// The suite brings up the topology named by SWARMLAB_TOPOLOGY (default
// swarm-3) as lab e2e-<topology>, deploys its stacks and the e2e stack
// (testdata/edge: echo behind an HAProxy edge), runs the specs, and removes
// the lab at the end, on failure and on Ctrl-C too, unless SWARMLAB_KEEP=1.
// Specs that need more than the topology has (three managers for quorum,
// two workers for failover) are skipped with the reason, never passed.
// Reports go to SWARMLAB_REPORT_DIR (default .cache/e2e/<topology>/).
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/stack"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	suiteConfig, reporterConfig := GinkgoConfiguration()
	// A run takes minutes: show each spec and its steps as they happen,
	// unless asked to be brief.
	if !reporterConfig.Succinct && !reporterConfig.VeryVerbose {
		reporterConfig.Verbose = true
	}
	// Logs and CI read this output: colour only on a terminal.
	if st, err := os.Stdout.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
		reporterConfig.NoColor = true
	}
	suiteConfig.LabelFilter = defaultLabelFilter(suiteConfig)
	RunSpecs(t, "swarmlab e2e", suiteConfig, reporterConfig)
}

// topologyFilter is the label filter the run took from its topology's
// e2e.require, when the user gave no selection of their own: each topology
// runs the specs it exists to prove (swarm-3 the faults of one manager and
// two workers, vote-6 the vote, swarm-ha the quorum), not every spec again.
// The others are reported as not selected, with how to run them here.
var topologyFilter string

// defaultLabelFilter returns the run's label filter: the user's if they
// narrowed the run in any way, else "a || b || ..." over the topology's
// required labels, else none (every spec).
func defaultLabelFilter(c types.SuiteConfig) string {
	if c.LabelFilter != "" || len(c.FocusStrings)+len(c.FocusFiles)+len(c.SkipStrings)+len(c.SkipFiles) > 0 {
		return c.LabelFilter
	}
	path, err := topologyPath(moduleRoot(), os.Getenv(envTopology))
	if err != nil {
		return "" // BeforeSuite reports it
	}
	topo, _, err := topology.LoadFile(path)
	if err != nil || len(topo.E2E.Require) == 0 {
		return ""
	}
	topologyFilter = strings.Join(topo.E2E.Require, " || ")
	return topologyFilter
}

var _ = BeforeSuite(func(ctx SpecContext) {
	root := moduleRoot()
	path, err := topologyPath(root, os.Getenv(envTopology))
	Expect(err).NotTo(HaveOccurred())
	topo, warnings, err := topology.LoadFile(path)
	Expect(err).NotTo(HaveOccurred())
	for _, w := range warnings {
		GinkgoWriter.Printf("topology: %s\n", w)
	}
	topoName := topo.Name
	name := "e2e-" + topoName

	engine := ""
	if e := topo.Engine(); e != "" {
		engine = ", Docker " + e
		if engineFromEnv() != "" {
			engine += " (" + envEngine + ")"
		}
	}
	By(fmt.Sprintf("bringing up %s as lab %s%s", path, name, engine))
	// The lab library handles no signals; labtest does, for this test
	// binary: Ctrl-C or SIGTERM cancels a bring-up in flight (which removes
	// what it made), writes the report of the specs that ended, removes the
	// lab unless it is kept, and exits with 130 or 143.
	labtest.OnInterrupt(writeInterruptedReport)
	opts := lab.Options{Name: name, Out: GinkgoWriter}
	l, err := labtest.UpFor(ctx, topo, opts)
	var firstAttempt string
	if err != nil && ctx.Err() == nil && !errors.Is(err, provider.ErrExists) && !errors.Is(err, lab.ErrNoEngine) {
		// A failed Up removes what it made, so a second attempt starts
		// clean. The first failure stays in the report: it is the lab's
		// flakiness, not the apps'.
		firstAttempt = err.Error()
		GinkgoWriter.Printf("bring-up failed (%v); trying once more\n", err)
		l, err = labtest.UpFor(ctx, topo, opts)
	}
	Expect(err).NotTo(HaveOccurred(), "bringing up lab %s", name)
	if !keepLab() { // a kept lab must outlive the process
		releaseLab = labtest.RemoveOnInterrupt(l)
	}
	sut = &system{lab: l, topo: topo, name: topoName}
	up := &bringUpReport{Seconds: secs(l.BringUp().Total), FirstAttemptFailed: firstAttempt}
	for _, st := range l.BringUp().Steps {
		up.Steps = append(up.Steps, seconds{Name: st.Name, Seconds: secs(st.Duration)})
	}
	run.Lock()
	run.bringUp = up
	run.Unlock()
	GinkgoWriter.Printf("lab %s up in %.1fs; ingress %s (%s); API host %s, nodes %v; Docker %s\n",
		l.Name(), l.BringUp().Total.Seconds(), l.Info().Ingress, l.Info().IngressWhy, l.Info().HostAPI, l.Info().NodeAPI,
		lab.EngineSummary(l.Cluster().Nodes(), l.Info().NodeEngine))

	By("deploying the e2e stack: echo behind an HAProxy edge")
	start := time.Now()
	deployE2EStack(ctx)
	sut.expectWhole(ctx)
	up.StackSeconds = secs(time.Since(start))
}, NodeTimeout(bringUpTimeout))

// releaseLab ends labtest's duty to remove the lab on a signal, once
// AfterSuite has removed it.
var releaseLab = func() {}

// deployE2EStack builds echo v1, deploys testdata/edge/stack.yml as stack
// "e2e" and waits until it runs.
func deployE2EStack(ctx context.Context) {
	GinkgoHelper()
	path, err := filepath.Abs(stackFile)
	Expect(err).NotTo(HaveOccurred())
	// Detached: the later versions of echo build while the stack starts.
	st, err := sut.lab.Stacks().Deploy(ctx, stackName, path, lab.StackOptions{Detach: true})
	Expect(err).NotTo(HaveOccurred(), "deploying stack %s", stackName)
	sut.echoImage = st.Images["echo"]
	Expect(sut.echoImage).NotTo(BeEmpty(), "%s declares no image echo", stackFile)
	sut.prebuildEcho()
	waitFor(ctx, "stack "+stackName+" to run all its tasks", lab.StackTimeout, stack.Converged(sut.mustManager(ctx), stackName))
}

// Every spec starts from a whole lab (sut.expectWhole: what the topology
// describes, every service running, echo spread over the workers, the edge
// answering from every echo task), in its Describe's BeforeEach, right after
// the checks that skip it on a topology without what it needs: a spec that
// will not run should not wait for the lab first.

// A failed spec leaves its evidence next to the report, taken before the
// spec's cleanup repairs the lab.
var _ = JustAfterEach(func(ctx SpecContext) {
	if sr := CurrentSpecReport(); sr.Failed() && sut != nil {
		dir := saveDiagnostics(ctx, sr.FullText())
		r := record()
		run.Lock()
		r.Diagnostics = dir
		run.Unlock()
		GinkgoWriter.Printf("diagnostics of the failure: %s\n", dir)
	}
}, NodeTimeout(2*time.Minute))

var _ = AfterSuite(func(ctx SpecContext) {
	if sut == nil {
		return
	}
	if keepLab() {
		fmt.Fprintf(GinkgoWriter, "%s=1: lab %s kept. Drive it with: eval \"$(scripts/swarmlab env %s)\"; remove it with: scripts/swarmlab down %s\n",
			envKeep, sut.lab.Name(), sut.lab.Name(), sut.lab.Name())
		return
	}
	By("removing lab " + sut.lab.Name())
	defer releaseLab()
	if err := sut.lab.Down(ctx); err != nil {
		addProblem("removing lab %s: %v", sut.lab.Name(), err)
		Fail(fmt.Sprintf("removing lab %s: %v", sut.lab.Name(), err))
	}
	waitFor(ctx, "nothing of lab "+sut.lab.Name()+" to be left", time.Minute, nothingLeft(sut.lab))
}, NodeTimeout(cleanupTimeout))

var _ = ReportAfterSuite("e2e reports", func(report Report) {
	writeReports(report)
})

// nothingLeft holds when nothing of the lab is left, as its provider sees
// it (docker: containers, networks and volumes with its label on this
// machine's engine; ssh: on its hosts) and on this machine (its state).
func nothingLeft(l *lab.Lab) wait.Check {
	return func(ctx context.Context) wait.Result {
		left, err := l.Leftovers(ctx)
		if err != nil {
			return wait.Continue("%v", err)
		}
		if len(left) > 0 {
			return wait.Continue("%d left: %s", len(left), strings.Join(left, ", "))
		}
		return wait.Done("nothing left")
	}
}
