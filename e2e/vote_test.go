//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/app/vote/loadgen"
	"github.com/swarmlab/swarmlab/lab/fault"
	"github.com/swarmlab/swarmlab/lab/provider"
)

// The vote system of topologies/vote-6.yaml (app/vote/stack.yml, stack
// "vote"): its promise is that every acknowledged vote is counted exactly
// once, whatever breaks, and that votes are taken during every fault and
// after every recovery.
const (
	voteStack = "vote"
	// voteStackFile is how a topology deploys the vote system.
	voteStackFile = "app/vote/stack.yml"
	// Votes flow at voteRate from the first fault to voteAfter past the
	// last, then stop: the spec lasts as long as its faults, not as long as
	// a fixed number of votes. voteCap only bounds a run whose faults hang.
	voteRate   = 200 // votes/s
	voteCap    = voteRate * 15 * 60
	voteVoters = 4000 // after 20 s every vote is a repeat: latest-vote-wins under faults
	// voteAfter is how long votes flow after each recovery before the next
	// fault (or the stop): the window that shows the system took votes again.
	voteAfter = 5 * time.Second
)

// deploysVote reports whether the topology deploys the vote stack.
func deploysVote() bool {
	for i := range sut.topo.Stacks {
		if strings.HasSuffix(filepath.ToSlash(sut.topo.StackPath(i)), "/"+voteStackFile) {
			return true
		}
	}
	return false
}

// voteWindow is one fault's time line, to count the votes sent in it.
type voteWindow struct {
	fault                         string
	begin, recovered, end, resume time.Time // resume: the next fault may begin
}

var _ = Describe("Vote", Label("vote"), Ordered, func() {
	var vote, results string

	BeforeAll(func(ctx SpecContext) {
		if !deploysVote() {
			Skip(fmt.Sprintf("not run on %s: it does not deploy the vote stack (%s), which topologies/vote-6.yaml does", sut.name, voteStackFile))
		}
		eps, err := sut.lab.Endpoints(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, e := range eps {
			switch e.Name {
			case "vote":
				vote = e.URL
			case "results":
				results = e.URL
			}
		}
		Expect(vote).NotTo(BeEmpty(), "%s deploys %s, but no vote endpoint is published: %+v", sut.name, voteStackFile, eps)
		Expect(results).NotTo(BeEmpty(), "%s deploys %s, but no results endpoint is published: %+v", sut.name, voteStackFile, eps)
		sut.expectWhole(ctx)
	})

	It("counts every acknowledged vote exactly once while its worker, a frontend node, a frontend Redis and Postgres die", func(ctx SpecContext) {
		By(fmt.Sprintf("voting through the edge at %d votes/s: %s", voteRate, vote))
		lctx, cancelVoting := context.WithCancel(ctx)
		defer cancelVoting()
		stopVoting := make(chan struct{})
		type outcome struct {
			rep loadgen.Report
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			defer GinkgoRecover()
			rep, err := loadgen.Run(lctx, loadgen.Config{
				URLs: []string{vote}, ResultsURL: results,
				Votes: voteCap, Voters: voteVoters, Switch: 0.5, Stop: stopVoting,
				Rate: voteRate, Concurrency: 32, Timeout: 3 * time.Minute, RequestTimeout: requestTimeout,
			})
			done <- outcome{rep, err}
		}()
		time.Sleep(5 * time.Second) // votes are in every Redis and in flight to Postgres

		var windows []*voteWindow
		begin := func(what string) (*faultRun, *voteWindow) {
			w := &voteWindow{fault: what, begin: time.Now()}
			windows = append(windows, w)
			return beginFault(ctx, what, nil), w
		}
		// recovered ends the fault, then lets votes flow for voteAfter.
		recovered := func(f *faultRun, w *voteWindow, as string) {
			f.recovered(as)
			w.recovered = time.Now()
			f.end(ctx)
			w.end = time.Now()
			By(fmt.Sprintf("voting %s after the recovery", voteAfter))
			time.Sleep(voteAfter)
			w.resume = time.Now()
		}

		killTaskOf := func(service, what string) {
			GinkgoHelper()
			tasks := sut.runningTasks(ctx, service)
			Expect(tasks).NotTo(BeEmpty(), "running tasks of %s", service)
			f, w := begin(what)
			node, err := fault.KillTask(ctx, sut.lab, sut.mustManager(ctx), tasks[0].Task)
			Expect(err).NotTo(HaveOccurred())
			f.detected(fmt.Sprintf("%s killed on %s", service, node))
			waitFor(ctx, service+" to run a new task", rescheduleTimeout, sut.taskEnded(tasks[0].ID))
			waitFor(ctx, "every service to run all its tasks after "+what, convergeTimeout, sut.servicesConverged())
			recovered(f, w, "every service running all its tasks")
		}

		killTaskOf(voteStack+"_worker", "the worker's container is killed mid-stream")

		By("killing node frontend01, then starting it again")
		f, w := begin("node frontend01 is killed and started again")
		sut.do(ctx, "frontend01", provider.Kill)
		waitFor(ctx, "frontend01 to be Down", nodeDownTimeout, sut.nodeIs("frontend01", swarm.NodeStateDown))
		f.detected("node Down") // when the swarm saw it, not when the kill was sent
		sut.do(ctx, "frontend01", provider.Start)
		waitFor(ctx, "frontend01 to be Ready", nodeReadyTimeout, sut.nodeIs("frontend01", swarm.NodeStateReady))
		waitFor(ctx, "every service to run all its tasks after frontend01 came back", convergeTimeout, sut.servicesConverged())
		recovered(f, w, "node Ready, every service running all its tasks")

		killTaskOf(voteStack+"_redis", "a frontend Redis is killed and restarted")
		killTaskOf(voteStack+"_db", "Postgres is killed and restarted")

		By("stopping the votes, waiting for the tally, and checking every voter")
		close(stopVoting)
		var out outcome
		Eventually(done).WithTimeout(6*time.Minute).Should(Receive(&out), "the load generator to finish and the tally to settle")
		Expect(out.err).NotTo(HaveOccurred())
		r := out.rep
		record().note("votes: sent %d, accepted %d, failed (outcome unknown) %d, rejected %d; %.0f accepted/s, p50 %.1f ms, p99 %.1f ms; tally in range %.2fs after the last reply",
			r.Sent, r.Accepted, r.Failed, r.Rejected, r.VotesPerSec, r.P50ms, r.P99ms, r.CountedAfter)
		record().note("voters: %d voted, %d checked through /api/voter, %d unread; lost %d, unexpected %d, uncertain %d; tally moved a=%+d b=%+d, voters counted a=%d b=%d; floors: %.0f%% acknowledged, %.0f%% uncertain; verdict: %s",
			r.Voters, r.Checked, r.Unread, r.Lost.Count, r.Unexpected.Count, r.Uncertain.Count,
			r.Observed.A-r.Baseline.A, r.Observed.B-r.Baseline.B, r.Counted.A, r.Counted.B,
			100*r.MinAccepted, 100*r.MaxUncertain, r.Result)
		type counts struct{ during, after loadgen.WindowCounts }
		per := make([]counts, len(windows))
		for i, w := range windows {
			per[i] = counts{r.Between(w.begin, w.end), r.Between(w.recovered, w.resume)}
			d, a := per[i].during, per[i].after
			record().note("%s: votes sent during the fault (%.1fs): %d accepted, %d uncertain, %d rejected; in the %.1fs after recovery: %d accepted, %d uncertain, %d rejected",
				w.fault, w.end.Sub(w.begin).Seconds(), d.Accepted, d.Failed, d.Rejected,
				w.resume.Sub(w.recovered).Seconds(), a.Accepted, a.Failed, a.Rejected)
		}
		Expect(r.Verdict()).To(Succeed(), "the per-voter check")
		for i, w := range windows {
			Expect(per[i].during.Accepted).To(BeNumerically(">", 0), "votes acknowledged while %s (%+v)", w.fault, per[i].during)
			Expect(per[i].after.Accepted).To(BeNumerically(">", 0), "votes acknowledged after recovering from: %s (%+v)", w.fault, per[i].after)
		}
	}, NodeTimeout(15*time.Minute))
})
