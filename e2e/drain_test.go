package e2e

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/swarm"
	. "github.com/onsi/ginkgo/v2"
)

var _ = Describe("Drain", Label("rescheduling", "drain"), func() {
	BeforeEach(func(ctx SpecContext) {
		requireWorkers(2)
		sut.expectWhole(ctx)
	}, NodeTimeout(cleanupTimeout))

	It("moves every task off a drained node, and uses the node again once it is active", func(ctx SpecContext) {
		w := sut.busiestWorker(ctx, echoService)
		traffic := sut.startTraffic()
		DeferCleanup(func(ctx context.Context) { sut.restore(ctx) }, NodeTimeout(cleanupTimeout))

		f := beginFault(ctx, "drain node "+w, traffic)
		sut.setAvailability(ctx, w, swarm.NodeAvailabilityDrain)
		waitFor(ctx, fmt.Sprintf("%s to run %d tasks, none on %s", echoService, echoReplicas, w), rescheduleTimeout,
			sut.tasksRunning(echoService, echoReplicas, placement{avoid: w}))
		f.recovered(fmt.Sprintf("%d/%d running off %s", echoReplicas, echoReplicas, w))
		waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
		f.end(ctx)

		back := beginFault(ctx, "activate node "+w+", then force-update "+echoService, traffic)
		sut.setAvailability(ctx, w, swarm.NodeAvailabilityActive)
		sut.forceUpdate(ctx, echoService)
		waitFor(ctx, fmt.Sprintf("%s to run %d tasks, some on %s", echoService, echoReplicas, w), convergeTimeout,
			sut.tasksRunning(echoService, echoReplicas, placement{use: w}))
		back.recovered("tasks on " + w + " again")
		back.end(ctx)
	}, SpecTimeout(specTimeout))
})
