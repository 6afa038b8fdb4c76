// Package e2e proves, on a real multi-node swarm, that apps survive what
// breaks clusters: lost tasks, lost and partitioned nodes, drains, scaling,
// rolling updates, and lost manager quorum.
//
//	go test -count=1 -timeout 30m ./e2e                      # swarm-3
//	SWARMLAB_TOPOLOGY=swarm-ha go test -count=1 -timeout 30m ./e2e
//	go test -count=1 ./e2e -ginkgo.label-filter=failover     # one capability
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
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
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

	By(fmt.Sprintf("bringing up %s as lab %s", path, name))
	// An ephemeral lab is removed by the lab itself on Ctrl-C or SIGTERM;
	// a kept one must outlive the process.
	opts := lab.Options{Name: name, Ephemeral: !keepLab(), Out: GinkgoWriter}
	// Ctrl-C still leaves a report of the specs that ended.
	lab.OnInterrupt(writeInterruptedReport)
	l, err := lab.Up(ctx, topo, opts)
	var firstAttempt string
	if err != nil && ctx.Err() == nil && !errors.Is(err, provider.ErrExists) && !errors.Is(err, lab.ErrNoEngine) {
		// A failed Up removes what it made, so a second attempt starts
		// clean. The first failure stays in the report: it is the lab's
		// flakiness, not the apps'.
		firstAttempt = err.Error()
		GinkgoWriter.Printf("bring-up failed (%v); trying once more\n", err)
		l, err = lab.Up(ctx, topo, opts)
	}
	Expect(err).NotTo(HaveOccurred(), "bringing up lab %s", name)
	sut = &system{lab: l, topo: topo, name: topoName}
	up := &bringUpReport{Seconds: secs(l.BringUp.Total), FirstAttemptFailed: firstAttempt}
	for _, st := range l.BringUp.Steps {
		up.Steps = append(up.Steps, seconds{Name: st.Name, Seconds: secs(st.Duration)})
	}
	run.Lock()
	run.bringUp = up
	run.Unlock()
	GinkgoWriter.Printf("lab %s up in %.1fs; ingress %s (%s); API host %s, nodes %v\n",
		l.Name, l.BringUp.Total.Seconds(), l.Info.Ingress, l.Info.IngressWhy, l.Info.HostAPI, l.Info.NodeAPI)

	By("deploying the e2e stack: echo behind an HAProxy edge")
	start := time.Now()
	deployE2EStack(ctx)
	sut.expectWhole(ctx)
	up.StackSeconds = secs(time.Since(start))
}, NodeTimeout(bringUpTimeout))

// deployE2EStack builds echo v1, deploys testdata/edge/stack.yml as stack
// "e2e" and waits until it runs.
func deployE2EStack(ctx context.Context) {
	GinkgoHelper()
	path, err := filepath.Abs(stackFile)
	Expect(err).NotTo(HaveOccurred())
	env := sut.lab.StackEnv()
	imgs, err := sut.lab.BuildStackImages(ctx, path)
	Expect(err).NotTo(HaveOccurred())
	maps.Copy(env, imgs)
	sut.echoImage = imgs[stack.ImageEnv("echo")]
	cfg, err := stack.Load(path, env)
	Expect(err).NotTo(HaveOccurred())
	mgr := sut.mustManager(ctx)
	Expect(stack.Deploy(ctx, mgr, stackName, cfg)).To(Succeed())
	sut.prebuildEcho()
	waitFor(ctx, "stack "+stackName+" to run all its tasks", lab.StackTimeout, stack.Converged(mgr, stackName))
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
			envKeep, sut.lab.Name, sut.lab.Name, sut.lab.Name)
		return
	}
	By("removing lab " + sut.lab.Name)
	if err := sut.lab.Down(ctx); err != nil {
		addProblem("removing lab %s: %v", sut.lab.Name, err)
		Fail(fmt.Sprintf("removing lab %s: %v", sut.lab.Name, err))
	}
	waitFor(ctx, "nothing of lab "+sut.lab.Name+" to be left", time.Minute, nothingLeft(sut.lab))
}, NodeTimeout(cleanupTimeout))

var _ = ReportAfterSuite("e2e reports", func(report Report) {
	writeReports(report)
})

// nothingLeft holds when the lab is no longer listed, and no container,
// network or volume on this machine's engine carries its label. (What an
// ssh lab leaves on its hosts is checked by lab's TestSSHLab.)
func nothingLeft(l *lab.Lab) wait.Check {
	return func(ctx context.Context) wait.Result {
		names, err := lab.Labs(ctx)
		if err != nil {
			return wait.Continue("listing labs: %v", err)
		}
		if slices.Contains(names, l.Name) {
			return wait.Continue("lab %s is still listed", l.Name)
		}
		f := make(client.Filters).Add("label", common.LabelLab+"="+l.Name)
		cs, err := l.Host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return wait.Continue("container list: %v", err)
		}
		ns, err := l.Host.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			return wait.Continue("network list: %v", err)
		}
		vs, err := l.Host.VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if err != nil {
			return wait.Continue("volume list: %v", err)
		}
		if n := len(cs.Items) + len(ns.Items) + len(vs.Items); n > 0 {
			return wait.Continue("%d containers, %d networks, %d volumes left", len(cs.Items), len(ns.Items), len(vs.Items))
		}
		return wait.Done("nothing left")
	}
}
