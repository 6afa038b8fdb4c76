//go:build e2e

package e2e

import (
	"fmt"

	"github.com/moby/moby/api/types/swarm"
	. "github.com/onsi/ginkgo/v2"
)

var _ = Describe("Drain", Label("rescheduling", "drain"), func() {
	BeforeEach(func(ctx SpecContext) {
		requireWorkers(2)
		sut.expectWhole(ctx)
	}, NodeTimeout(cleanupTimeout))

	It("moves every task off a drained node, and uses the node again once it is active, with 0 failed requests", func(ctx SpecContext) {
		w, traffic := sut.workerUnderFault(ctx)

		f := beginFault(ctx, "drain node "+w, traffic)
		sut.setAvailability(ctx, w, swarm.NodeAvailabilityDrain)
		sut.waitEchoOff(ctx, w, rescheduleTimeout)
		f.recovered(fmt.Sprintf("%d/%d running off %s", echoReplicas, echoReplicas, w))
		waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
		sum := f.end(ctx)
		By("checking every request succeeded during the drain (a planned move)")
		expectNoFailures(sum, "while "+w+" was drained")

		back := beginFault(ctx, "activate node "+w+", then force-update "+echoService, traffic)
		sut.setAvailability(ctx, w, swarm.NodeAvailabilityActive)
		sut.forceUpdate(ctx, echoService)
		sut.waitEchoOn(ctx, w)
		back.recovered("tasks on " + w + " again")
		sut.waitEdgeSettled(ctx)
		sum = back.end(ctx)
		By("checking every request succeeded while the tasks moved back")
		expectNoFailures(sum, "while "+w+" took tasks again")
	}, SpecTimeout(specTimeout))
})
