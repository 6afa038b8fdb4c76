//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab/probe"
	"github.com/swarmlab/swarmlab/lab/rollout"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// edgeSettle is how long the edge may go on answering from a replaced task
// after the swarm calls an update complete: the last old task leaves DNS,
// and HAProxy re-resolves every 200ms.
const edgeSettle = 10 * time.Second

var _ = Describe("Rolling update", Label("rolling-update"), func() {
	BeforeEach(func(ctx SpecContext) { sut.expectWhole(ctx) }, NodeTimeout(cleanupTimeout))

	It("moves from v1 to v2 one task at a time, start-first (as the tasks' timestamps show), with 0 failed requests under steady traffic", func(ctx SpecContext) {
		v1 := servedVersion(ctx)
		v2 := sut.echoImageVersion(ctx, "v2", false)
		oldTasks := sut.runningTasks(ctx, echoService)
		f, traffic := rollOut(ctx, v1, "v2", v2, swarm.UpdateStateCompleted)
		waitFor(ctx, fmt.Sprintf("%s to run %d tasks of v2", echoService, echoReplicas), convergeTimeout,
			sut.tasksRunning(echoService, echoReplicas, placement{image: v2}))
		done := time.Now()
		expectOneAtATimeStartFirst(ctx, oldTasks, v1.image, v2, f.start)
		waitForVersion(ctx, traffic, "v2")
		f.recovered("the edge serves only v2")
		sum := f.end(ctx)

		By("checking every request succeeded, and the versions served moved from " + v1.version + " to v2")
		expectNoFailures(sum, "during the rolling update")
		before := traffic.Between(time.Time{}, f.start)
		Expect(before.Versions).To(HaveKey(v1.version))
		Expect(before.Versions).To(HaveLen(1), "before the update: %s", before)
		firstV2, ok := sum.First("v2")
		Expect(ok).To(BeTrue(), "v2 never answered: %s", sum)
		lastV1, _ := sum.Last(v1.version)
		record().note("first v2 reply %.2fs after the update began; last %s reply %.2fs after; update completed after %.2fs",
			firstV2.Sub(f.start).Seconds(), v1.version, lastV1.Sub(f.start).Seconds(), done.Sub(f.start).Seconds())
		Expect(lastV1).To(BeTemporally("<", done.Add(edgeSettle)), "%s still answered %s after the update completed", v1.version, edgeSettle)
	}, SpecTimeout(specTimeout))

	It("rolls a broken v3 back by itself, and the version before it keeps serving with 0 failed requests", func(ctx SpecContext) {
		prev := servedVersion(ctx)
		v3 := sut.echoImageVersion(ctx, "v3", true)
		f, _ := rollOut(ctx, prev, "v3 (health check fails)", v3, swarm.UpdateStateRollbackCompleted)
		waitFor(ctx, fmt.Sprintf("%s to run %d tasks of %s", echoService, echoReplicas, prev.version), convergeTimeout,
			sut.tasksRunning(echoService, echoReplicas, placement{image: prev.image}))
		f.recovered(fmt.Sprintf("%d/%d running %s", echoReplicas, echoReplicas, prev.version))
		waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
		sum := f.end(ctx)

		svc, err := sut.mustManager(ctx).ServiceInspect(ctx, echoService, client.ServiceInspectOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Service.Spec.TaskTemplate.ContainerSpec.Image).To(Equal(prev.image), "the service spec after the rollback")
		record().note("update status after the rollback: %s", svc.Service.UpdateStatus.Message)
		expectNoFailures(sum, "during the broken update and its rollback")
		Expect(sum.Versions).To(HaveLen(1), "only %s may answer: %s", prev.version, sum)
		Expect(sum.Versions).To(HaveKey(prev.version))
	}, SpecTimeout(specTimeout))
})

type served struct{ version, image string }

// rollOut updates echo from what it serves to image under steady traffic
// through the edge, and waits until the update ends as want says.
func rollOut(ctx context.Context, from served, to, image string, want swarm.UpdateState) (*faultRun, *probe.Traffic) {
	GinkgoHelper()
	traffic := sut.startTraffic()
	waitForVersion(ctx, traffic, from.version)
	f := beginFault(ctx, fmt.Sprintf("rolling update of %s from %s to %s", echoService, from.version, to), traffic)
	since := time.Now()
	sut.setImage(ctx, echoService, image)
	waitFor(ctx, "the update to end "+string(want), updateTimeout, sut.updateEnded(echoService, since, want))
	f.detected(string(want))
	return f, traffic
}

// servedVersion is the version echo serves now, and its image.
func servedVersion(ctx context.Context) served {
	GinkgoHelper()
	sum := probe.Sequence(ctx, sut.edgeURL, 3*echoReplicas, requestTimeout)
	expectNoFailures(sum, "before the update")
	Expect(sum.Versions).To(HaveLen(1), "echo serves several versions before the update: %s", sum)
	svc, err := sut.mustManager(ctx).ServiceInspect(ctx, echoService, client.ServiceInspectOptions{})
	Expect(err).NotTo(HaveOccurred())
	for v := range sum.Versions {
		return served{version: v, image: svc.Service.Spec.TaskTemplate.ContainerSpec.Image}
	}
	panic("unreachable")
}

// waitForVersion waits until the traffic's replies of the last second all
// come from version v.
func waitForVersion(ctx context.Context, traffic *probe.Traffic, v string) {
	GinkgoHelper()
	waitFor(ctx, "the edge to serve only "+v, edgeSettle+edgeTimeout, func(context.Context) wait.Result {
		s := traffic.Since(time.Now().Add(-time.Second))
		if s.Requests < 5 || len(s.Versions) != 1 || s.Versions[v] == 0 {
			return wait.Continue("last second: %s", s)
		}
		return wait.Done("last second: " + s.String())
	})
}

// expectOneAtATimeStartFirst checks, from the tasks' own timestamps, that
// the update to image replaced old (the tasks running before it began at
// since) one task at a time and start-first (lab/rollout says how): when
// each old task stopped (the time of its shutdown state) and each new task
// ran (the time of its running state: with a health check, once healthy).
func expectOneAtATimeStartFirst(ctx context.Context, old []placedTask, from, image string, since time.Time) {
	GinkgoHelper()
	By("checking from the tasks' timestamps that the update went one task at a time, start-first")
	for _, t := range old {
		waitFor(ctx, fmt.Sprintf("old task %s (slot %d) to stop", shortID(t.ID), t.Slot), convergeTimeout, sut.taskEnded(t.ID))
	}
	mgr := sut.mustManager(ctx)
	all, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", echoService)})
	Expect(err).NotTo(HaveOccurred())
	isOld := map[string]placedTask{}
	for _, t := range old {
		isOld[t.ID] = t
	}
	var tasks []rollout.Task
	var seen []string
	for _, t := range all.Items {
		rt := rollout.Task{ID: shortID(t.ID), Slot: t.Slot, Created: t.Meta.CreatedAt}
		if t.Spec.ContainerSpec != nil {
			rt.Version = t.Spec.ContainerSpec.Image
		}
		switch before, ok := isOld[t.ID]; {
		case ok:
			rt.Version = from
			rt.Running = before.Status.Timestamp
		case rt.Version == image && !t.Meta.CreatedAt.Before(since.Add(-time.Second)):
		default:
			continue // an earlier spec's task
		}
		switch t.Status.State {
		case swarm.TaskStateRunning:
			if rt.Running.IsZero() {
				rt.Running = t.Status.Timestamp
			}
		case swarm.TaskStateShutdown, swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected:
			rt.Stopped = t.Status.Timestamp
		}
		tasks = append(tasks, rt)
		seen = append(seen, fmt.Sprintf("%s slot %d %s created %s running %s stopped %s", rt.ID, rt.Slot, versionName(rt.Version, from, image),
			clockOf(rt.Created), clockOf(rt.Running), clockOf(rt.Stopped)))
	}
	sort.Strings(seen)
	rep, err := rollout.OneAtATimeStartFirst(tasks, from, image, echoReplicas)
	record().note("update order from the tasks' timestamps: %s; tasks: %s", rep, strings.Join(seen, "; "))
	Expect(err).NotTo(HaveOccurred(), "the update's tasks: %s", strings.Join(seen, "; "))
}

func versionName(v, from, to string) string {
	switch v {
	case from:
		return "old"
	case to:
		return "new"
	}
	return v
}

func clockOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05.000")
}
