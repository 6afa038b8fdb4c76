//go:build e2e

package e2e

import (
	"fmt"
	"time"

	"github.com/moby/moby/api/types/swarm"
	. "github.com/onsi/ginkgo/v2"

	"github.com/swarmlab/swarmlab/lab/provider"
)

var _ = Describe("Failover", Label("failover"), func() {
	BeforeEach(func(ctx SpecContext) {
		requireWorkers(2)
		sut.expectWhole(ctx)
	}, NodeTimeout(cleanupTimeout))

	It(fmt.Sprintf("runs a killed worker's tasks on the survivors while the app keeps answering (at most %d requests fail), and uses the worker again once it is back (0 fail from when the survivors answer)", maxFailedInFlight), func(ctx SpecContext) {
		w, traffic := sut.workerUnderFault(ctx)

		f := beginFault(ctx, "kill node "+w, traffic)
		sut.do(ctx, w, provider.Kill)
		waitFor(ctx, "the managers to mark "+w+" Down", heartbeatScaled(nodeDownTimeout), sut.nodeIs(w, swarm.NodeStateDown))
		down := f.detected("node Down")
		record().timing("detection: "+w+" Down, after the kill", down)
		sut.waitEchoOff(ctx, w, heartbeatScaled(rescheduleTimeout))
		moved := f.recovered(fmt.Sprintf("%d/%d running on the survivors", echoReplicas, echoReplicas))
		record().timing("replacement: every task of "+w+" running on the survivors, after the kill", moved)
		record().timing("replacement, after the detection", moved-down)
		waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
		whole := time.Now()
		record().timing("the edge answering from exactly the survivors' tasks, after the kill", whole.Sub(f.start))
		sum := f.end(ctx)
		By("checking the app kept answering through the edge")
		expectFailedAtMost(sum, maxFailedInFlight, "from the kill until the survivors answered")

		back := beginFault(ctx, "start node "+w+" again, then force-update "+echoService, traffic)
		sut.do(ctx, w, provider.Start)
		waitFor(ctx, w+" to be Ready", nodeReadyTimeout, sut.nodeIs(w, swarm.NodeStateReady))
		back.detected("node Ready")
		sut.forceUpdate(ctx, echoService)
		sut.waitEchoOn(ctx, w)
		back.recovered("tasks on " + w + " again")
		sut.waitEdgeSettled(ctx)
		back.end(ctx)

		By("checking that nothing failed once the survivors had taken over, through the worker's return")
		expectNoFailuresSince(ctx, traffic, whole, "from when the survivors answered through "+w+"'s return")
	}, SpecTimeout(specTimeout))
})
