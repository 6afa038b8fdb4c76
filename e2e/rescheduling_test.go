//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab/fault"
	"github.com/swarmlab/swarmlab/lab/probe"
	"github.com/swarmlab/swarmlab/lab/wait"
)

var _ = Describe("Rescheduling", Label("rescheduling"), func() {
	BeforeEach(func(ctx SpecContext) { sut.expectWhole(ctx) }, NodeTimeout(cleanupTimeout))

	It(fmt.Sprintf("replaces a task whose container is killed on its node by a new task in the same slot, back to N/N, answering through the edge (at most %d requests fail; 0 once the edge drops the dead task)", maxFailedInFlight), func(ctx SpecContext) {
		victim := sut.runningTasks(ctx, echoService)[0]
		ip := taskIP(victim.Task, stackName+"_edge")
		Expect(ip).NotTo(BeEmpty(), "task %s has no address on the edge network", shortID(victim.ID))
		traffic := sut.startTraffic()

		f := beginFault(ctx, fmt.Sprintf("kill the container of task %s (slot %d, %s) on %s", shortID(victim.ID), victim.Slot, ip, victim.Node), traffic)
		By(fmt.Sprintf("killing the container of task %s on node %s", shortID(victim.ID), victim.Node))
		_, err := fault.KillTask(ctx, sut.lab, sut.mustManager(ctx), victim.Task)
		Expect(err).NotTo(HaveOccurred())

		waitFor(ctx, fmt.Sprintf("the swarm to see task %s end", shortID(victim.ID)), heartbeatScaled(nodeDownTimeout), sut.taskEnded(victim.ID))
		record().timing("detection: the killed task ended, after the kill", f.detected("task ended"))
		waitFor(ctx, "HAProxy to take "+ip+" out of rotation", edgeTimeout, sut.edgeDropped(ip))
		dropped := time.Now()
		record().timing("HAProxy took the dead task out of rotation, after the kill", dropped.Sub(f.start))

		var repl placedTask
		waitFor(ctx, fmt.Sprintf("a new task running in slot %d in place of %s", victim.Slot, shortID(victim.ID)), rescheduleTimeout,
			sut.tasksCheck(echoService, func(tasks []placedTask) wait.Result {
				for _, t := range tasks {
					if t.Slot == victim.Slot && t.ID != victim.ID && t.running() {
						repl = t
						return wait.Done(fmt.Sprintf("task %s on %s", shortID(t.ID), t.Node))
					}
				}
				return wait.Continue("%s", describeTasks(tasks))
			}))
		replaced := f.recovered(fmt.Sprintf("new task %s running in slot %d", shortID(repl.ID), victim.Slot))
		record().timing("replacement: the new task running, after the kill", replaced)
		Expect(repl.Meta.CreatedAt).To(BeTemporally(">", victim.Meta.CreatedAt), "the new task %s must be created after the killed one %s", shortID(repl.ID), shortID(victim.ID))
		Expect(repl.Meta.CreatedAt).To(BeTemporally(">=", f.start.Add(-time.Second)), "the new task %s was created before the kill", shortID(repl.ID))

		waitFor(ctx, fmt.Sprintf("%s to run %d tasks again", echoService, echoReplicas), rescheduleTimeout, sut.tasksRunning(echoService, echoReplicas, placement{}))
		waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
		waitFor(ctx, "the steady traffic to get replies from the new task "+shortID(repl.ID), edgeTimeout, repliesFrom(traffic, repl.ID, dropped))
		sum := f.end(ctx)

		By("checking the app kept answering through the edge")
		expectFailedAtMost(sum, maxFailedInFlight, "from the kill until the new task answered")
		expectNoFailuresSince(ctx, traffic, dropped, "from when the edge dropped the dead task")
	}, SpecTimeout(specTimeout))
})

// repliesFrom holds when traffic since from has replies from task id.
func repliesFrom(traffic *probe.Traffic, id string, from time.Time) wait.Check {
	return func(context.Context) wait.Result {
		s := traffic.Since(from)
		for task, n := range s.Tasks {
			if strings.HasSuffix(task, "."+id) && n > 0 {
				return wait.Done(fmt.Sprintf("%d replies from %s", n, task))
			}
		}
		return wait.Continue("replies by task since the edge dropped the dead one: %v", s.Tasks)
	}
}
