package e2e

import (
	"context"
	"fmt"
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
// once, whatever breaks.
const (
	voteStack = "vote"
	// Votes flow at voteRate from the first fault to a few seconds past the
	// last, then stop: the spec lasts as long as its faults, not as long as
	// a fixed number of votes. voteCap only bounds a run whose faults hang.
	voteRate   = 200 // votes/s
	voteCap    = voteRate * 15 * 60
	voteVoters = 4000 // after 20 s every vote is a repeat: latest-vote-wins under faults
	voteAfter  = 5 * time.Second
)

var _ = Describe("Vote", Label("vote"), Ordered, func() {
	var vote, results string

	BeforeAll(func(ctx SpecContext) {
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
		if vote == "" || results == "" {
			Skip(fmt.Sprintf("not run on %s: needs the vote stack, which topologies/vote-6.yaml deploys", sut.name))
		}
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

		killTaskOf := func(service, what string) {
			GinkgoHelper()
			tasks := sut.runningTasks(ctx, service)
			Expect(tasks).NotTo(BeEmpty(), "running tasks of %s", service)
			f := beginFault(ctx, what, nil)
			node, err := fault.KillTask(ctx, sut.lab, sut.mustManager(ctx), tasks[0].Task)
			Expect(err).NotTo(HaveOccurred())
			f.detected(fmt.Sprintf("%s killed on %s", service, node))
			waitFor(ctx, service+" to run a new task", rescheduleTimeout, sut.taskEnded(tasks[0].ID))
			waitFor(ctx, "every service to run all its tasks after "+what, convergeTimeout, sut.servicesConverged())
			f.recovered("every service running all its tasks")
			f.end(ctx)
		}

		killTaskOf(voteStack+"_worker", "the worker's container is killed mid-stream")

		By("killing node frontend01, then starting it again")
		f := beginFault(ctx, "node frontend01 is killed and started again", nil)
		sut.do(ctx, "frontend01", provider.Kill)
		f.detected("node Down")
		waitFor(ctx, "frontend01 to be Down", nodeDownTimeout, sut.nodeIs("frontend01", swarm.NodeStateDown))
		sut.do(ctx, "frontend01", provider.Start)
		waitFor(ctx, "frontend01 to be Ready", nodeReadyTimeout, sut.nodeIs("frontend01", swarm.NodeStateReady))
		waitFor(ctx, "every service to run all its tasks after frontend01 came back", convergeTimeout, sut.servicesConverged())
		f.recovered("node Ready, every service running all its tasks")
		f.end(ctx)

		killTaskOf(voteStack+"_redis", "a frontend Redis is killed and restarted")
		killTaskOf(voteStack+"_db", "Postgres is killed and restarted")

		By(fmt.Sprintf("voting %s more, then stopping and waiting for the tally to match", voteAfter))
		time.Sleep(voteAfter)
		close(stopVoting)
		var out outcome
		Eventually(done).WithTimeout(6*time.Minute).Should(Receive(&out), "the load generator to finish and the tally to settle")
		Expect(out.err).NotTo(HaveOccurred())
		r := out.rep
		record().note("votes: sent %d, accepted %d, failed %d (maybe recorded: %d voters uncertain), %.0f accepted/s, p50 %.1f ms, p99 %.1f ms; counted %.2fs after the last reply; lost %d, double-counted %d",
			r.Sent, r.Accepted, r.Failed, r.Uncertain, r.VotesPerSec, r.P50ms, r.P99ms, r.CountedAfter, r.Lost, r.Double)
		Expect(r.Lost).To(BeZero(), "acknowledged votes missing from the tally")
		Expect(r.Double).To(BeZero(), "votes counted twice")
		Expect(r.Match).To(BeTrue(), "tally %+v, expected between %+v and %+v", r.Observed, r.Expected, r.ExpectHi)
	}, NodeTimeout(15*time.Minute))
})
