package e2e

import (
	"fmt"

	"github.com/moby/moby/api/types/swarm"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab/provider"
)

var _ = Describe("Partition", Label("partition"), func() {
	BeforeEach(func(ctx SpecContext) {
		requireWorkers(2)
		sut.expectWhole(ctx)
	}, NodeTimeout(cleanupTimeout))

	It("marks a worker cut off from its peers Down and runs its tasks elsewhere, and has it Ready again once healed", func(ctx SpecContext) {
		w, traffic := sut.workerUnderFault(ctx)

		f := beginFault(ctx, "partition node "+w, traffic)
		sut.do(ctx, w, provider.Partition)
		Expect(sut.node(w).Partitioned).To(BeTrue(), "the provider does not report %s as partitioned", w)
		waitFor(ctx, "the managers to mark "+w+" Down", heartbeatScaled(nodeDownTimeout), sut.nodeIs(w, swarm.NodeStateDown))
		f.detected("node Down")
		sut.waitEchoOff(ctx, w, heartbeatScaled(rescheduleTimeout))
		waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
		f.recovered(fmt.Sprintf("%d/%d running off %s, answering through the edge", echoReplicas, echoReplicas, w))
		f.end(ctx)

		heal := beginFault(ctx, "heal node "+w, traffic)
		sut.do(ctx, w, provider.Heal)
		waitFor(ctx, w+" to be Ready", nodeReadyTimeout, sut.nodeIs(w, swarm.NodeStateReady))
		heal.recovered("node Ready")
		heal.end(ctx)
	}, SpecTimeout(specTimeout))
})
