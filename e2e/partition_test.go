//go:build e2e

package e2e

import (
	"fmt"
	"time"

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

	It(fmt.Sprintf("marks a worker cut off from its peers Down and runs its tasks elsewhere (at most %d requests fail), and runs tasks on it again once healed (0 fail from when the survivors answer)", maxFailedInFlight), func(ctx SpecContext) {
		w, traffic := sut.workerUnderFault(ctx)

		f := beginFault(ctx, "partition node "+w, traffic)
		sut.do(ctx, w, provider.Partition)
		Expect(sut.node(w).Partitioned()).To(BeTrue(), "the provider does not report %s as partitioned", w)
		waitFor(ctx, "the managers to mark "+w+" Down", heartbeatScaled(nodeDownTimeout), sut.nodeIs(w, swarm.NodeStateDown))
		down := f.detected("node Down")
		record().timing("detection: "+w+" Down, after the partition", down)
		sut.waitEchoOff(ctx, w, heartbeatScaled(rescheduleTimeout))
		moved := f.recovered(fmt.Sprintf("%d/%d running off %s", echoReplicas, echoReplicas, w))
		record().timing("replacement: every task of "+w+" running off it, after the partition", moved)
		record().timing("replacement, after the detection", moved-down)
		waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
		whole := time.Now()
		record().timing("the edge answering from exactly the tasks off "+w+", after the partition", whole.Sub(f.start))
		sum := f.end(ctx)
		By("checking the app kept answering through the edge")
		expectFailedAtMost(sum, maxFailedInFlight, "from the partition until the survivors answered")

		// Hold the partition until the cut-off node has given up on its
		// peers, and its verdicts have gone out into the partition: see
		// gossipGaveUp. A heal amid them makes healthy nodes drop each other.
		if v := sut.lab.Info().NodeEngine[w]; givesUpWhenCutOff(v) {
			waitFor(ctx, w+", cut off, to give up on every peer", heartbeatScaled(nodeDownTimeout), sut.gossipGaveUp(w))
			record().timing(w+" gave up on its peers, after the partition", time.Since(f.start))
			By(fmt.Sprintf("letting %s's last dead verdicts go out into the partition (%s)", w, gossipDrain))
			time.Sleep(gossipDrain)
		} else {
			record().note("%s runs Docker %s, whose gossip gives up on no peer it cannot send to (its log: only \"Failed to send ping ... operation not permitted\", no suspicion): cut off, it has no dead verdicts to send, so the heal needs no wait", w, v)
		}

		heal := beginFault(ctx, "heal node "+w+", then force-update "+echoService, traffic)
		sut.do(ctx, w, provider.Heal)
		waitFor(ctx, w+" to be Ready", nodeReadyTimeout, sut.nodeIs(w, swarm.NodeStateReady))
		ready := heal.detected("node Ready")
		record().timing("control plane: "+w+" Ready, after the heal", ready)
		// Healed means both planes: see gossip_test.go. An update right
		// after Ready places tasks where the edge cannot reach them yet.
		gossip := waitFor(ctx, "the overlay gossip to take "+w+" back", healedEdgeTimeout, sut.gossipWhole())
		record().timing("data plane: every node and "+w+" list each other as peers again, after the heal", ready+gossip)
		sut.forceUpdate(ctx, echoService)
		sut.waitEchoOn(ctx, w)
		heal.recovered("tasks on " + w + " again")
		sut.waitEdgeSettledWithin(ctx, healedEdgeTimeout)
		heal.end(ctx)
		GinkgoWriter.Println(sut.overlayView(ctx, sut.edgeNode(), "e2e_edge"))

		By("checking that nothing failed once the survivors had taken over, through the heal")
		expectNoFailuresSince(ctx, traffic, whole, "from when the survivors answered through "+w+"'s heal")
	}, SpecTimeout(specTimeout))
})
