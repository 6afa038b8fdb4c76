package e2e

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab/fault"
)

var _ = Describe("Rescheduling", Label("rescheduling"), func() {
	BeforeEach(func(ctx SpecContext) { sut.expectWhole(ctx) }, NodeTimeout(cleanupTimeout))

	It("replaces a task whose container is killed on its node, back to N/N with a new task", func(ctx SpecContext) {
		victim := sut.runningTasks(ctx, echoService)[0]
		traffic := sut.startTraffic()

		f := beginFault(ctx, fmt.Sprintf("kill the container of task %s on %s", shortID(victim.ID), victim.Node), traffic)
		By(fmt.Sprintf("killing the container of task %s on node %s", shortID(victim.ID), victim.Node))
		_, err := fault.KillTask(ctx, sut.lab, sut.mustManager(ctx), victim.Task)
		Expect(err).NotTo(HaveOccurred())

		waitFor(ctx, fmt.Sprintf("the swarm to see task %s end", shortID(victim.ID)), heartbeatScaled(nodeDownTimeout), sut.taskEnded(victim.ID))
		f.detected("task ended")
		waitFor(ctx, fmt.Sprintf("%s to run %d tasks again", echoService, echoReplicas), rescheduleTimeout, sut.tasksRunning(echoService, echoReplicas, placement{}))
		f.recovered(fmt.Sprintf("%d/%d running", echoReplicas, echoReplicas))
		waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
		f.end(ctx)

		var ids []string
		for _, t := range sut.runningTasks(ctx, echoService) {
			ids = append(ids, t.ID)
		}
		Expect(ids).NotTo(ContainElement(victim.ID), "the killed task still counts as running")
	}, SpecTimeout(specTimeout))
})
