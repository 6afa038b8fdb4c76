//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/app/crud/client"
	"github.com/swarmlab/swarmlab/app/crud/history"
	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// Seed 002's CRUD system on topologies/crud-6.yaml (app/crud/stack.yml,
// stack "crud"): a node's failure is almost invisible to a user. Sessions
// survive any one node, acknowledged writes survive everything, the history
// of every item is linearizable, and a rolling update of the gate fails no
// request.
const (
	crudStack     = "crud"
	crudStackFile = "app/crud/stack.yml"
	crudGate      = crudStack + "_gate"
	// crudRate is item operations per second over crudSessions sessions,
	// on crudKeys keys: few enough keys that every key sees writes and
	// reads from several sessions during every fault.
	crudRate     = 60
	crudSessions = 8
	crudKeys     = 24
	// crudAfter is how long requests flow after each recovery.
	crudAfter = 5 * time.Second
)

// What each fault may fail, in requests sent during it (from the fault to
// its recovery). A request in flight on a killed node is lost with it until
// the edge's check (1 s, 2 falls) takes it out; a database member's loss
// stalls writes until Galera evicts it (measured 4.2-4.5 s, docs/galera.md);
// losing the Redis primary's node fails session writes until Sentinel
// promotes a replica (down-after 2 s, measured 3.0-3.3 s) and the gates'
// failover clients reconnect. The rolling update may fail none.
var crudAllowed = map[string]int{
	"gate":     crudRate * 3,
	"database": crudRate * 8,
	"redis":    crudRate * 10,
	"update":   0,
}

func deploysCrud() bool {
	for i := range sut.topo.Stacks {
		if strings.HasSuffix(filepath.ToSlash(sut.topo.StackPath(i)), "/"+crudStackFile) {
			return true
		}
	}
	return false
}

var _ = Describe("CRUD", Label("crud"), Ordered, func() {
	var base string

	BeforeAll(func(ctx SpecContext) {
		if !deploysCrud() {
			Skip(fmt.Sprintf("not run on %s: it does not deploy the crud stack (%s), which topologies/crud-6.yaml does", sut.name, crudStackFile))
		}
		eps, err := sut.lab.Endpoints(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, e := range eps {
			if e.Name == "crud" {
				base = strings.TrimSuffix(e.URL, "/")
			}
		}
		Expect(base).NotTo(BeEmpty(), "%s deploys %s, but no crud endpoint is published: %+v", sut.name, crudStackFile, eps)
		sut.expectWhole(ctx)
		// Which path the gates take to storage: DNS round-robin and their
		// own balancing without IPVS, the service VIP with it (the lab's
		// ingress mode decides; each gate's /healthz says).
		resp, err := http.Get(base + "/healthz")
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		record().note("gate to storage, as a gate's /healthz says (ingress %s): %s", sut.lab.Info().Ingress, strings.TrimSpace(string(body)))
	})

	It("keeps every session and every acknowledged write, linearizably, while a gate node, a database node and the Redis primary's node die, and fails no request while the gate rolls to a new version", func(ctx SpecContext) {
		By(fmt.Sprintf("reading and writing through the edge, %d sessions at %d operations/s: %s", crudSessions, crudRate, base))
		viz := filepath.Join(os.TempDir(), fmt.Sprintf("crud-history-%d.html", time.Now().UnixNano()))
		d, err := client.Start(ctx, client.Config{
			BaseURL: base, Sessions: crudSessions, Keys: crudKeys, Rate: crudRate,
			PutShare: 0.5, DeleteShare: 0.05, RequestTimeout: 10 * time.Second, ProbeEvery: 5,
			StartTimeout: time.Minute, FinalTimeout: time.Minute, VisualizePath: viz,
		})
		Expect(err).NotTo(HaveOccurred())
		stopped := false
		defer func() {
			if !stopped {
				d.Stop()
			}
		}()
		time.Sleep(crudAfter)

		type window struct {
			fault, kind            string
			begin, recovered, next time.Time
		}
		var windows []*window
		run := func(kind, what string, do func(f *faultRun)) {
			GinkgoHelper()
			By(what)
			w := &window{fault: what, kind: kind, begin: time.Now()}
			windows = append(windows, w)
			f := beginFault(ctx, what, nil)
			do(f)
			w.recovered = time.Now()
			f.end(ctx)
			By(fmt.Sprintf("requests flow for %s after the recovery", crudAfter))
			time.Sleep(crudAfter)
			w.next = time.Now()
		}
		killAndStart := func(f *faultRun, node string) {
			GinkgoHelper()
			sut.do(ctx, node, provider.Kill)
			waitFor(ctx, node+" to be Down", nodeDownTimeout, sut.nodeIs(node, swarm.NodeStateDown))
			f.detected("node Down")
			sut.do(ctx, node, provider.Start)
			waitFor(ctx, node+" to be Ready", nodeReadyTimeout, sut.nodeIs(node, swarm.NodeStateReady))
			waitFor(ctx, "every service to run all its tasks after "+node+" came back", convergeTimeout, sut.servicesConverged())
			f.recovered("node Ready, every service running all its tasks")
		}

		// The gate task that dies with its node: its log must still be
		// readable afterwards (the lab keeps every task's output).
		// Not the gate on the Redis primary's node: that loss is the
		// third fault's, with its own allowance (a gate node that also
		// runs the primary failed 249 requests here, against the gate's
		// 180, in runs where the primary's node came first).
		gates := sut.runningTasks(ctx, crudGate)
		Expect(gates).NotTo(BeEmpty(), "running tasks of %s", crudGate)
		firstPrimary := sut.redisPrimary(ctx)
		primaryNodes := map[string]bool{}
		for _, t := range sut.runningTasks(ctx, crudStack+"_"+firstPrimary) {
			primaryNodes[t.Node] = true
		}
		var killedGate *placedTask
		var gateNodes []string
		for i := range gates {
			gateNodes = append(gateNodes, gates[i].Node)
			if killedGate == nil && !primaryNodes[gates[i].Node] {
				killedGate = &gates[i]
			}
		}
		Expect(killedGate).NotTo(BeNil(), "a gate task on a node without the Redis primary (%s, on %v): gates on %v", firstPrimary, primaryNodes, gateNodes)
		run("gate", "gate node "+killedGate.Node+" is killed, then started", func(f *faultRun) { killAndStart(f, killedGate.Node) })

		dbs := sut.runningTasks(ctx, crudStack+"_db")
		Expect(dbs).NotTo(BeEmpty(), "running tasks of %s_db", crudStack)
		var dbCatchUp time.Duration
		run("database", "database node "+dbs[0].Node+" is killed, then started", func(f *faultRun) {
			killAndStart(f, dbs[0].Node)
			// Started again, its member rejoins by state transfer: Synced
			// (swarmlab-galera-health) once it has caught up.
			dbCatchUp = waitFor(ctx, "the database member on "+dbs[0].Node+" to be Synced again", convergeTimeout, sut.galeraSynced(dbs[0].Node))
		})

		primary := sut.redisPrimary(ctx)
		prim := sut.runningTasks(ctx, crudStack+"_"+primary)
		Expect(prim).NotTo(BeEmpty(), "running tasks of %s_%s, the Redis primary", crudStack, primary)
		run("redis", "the Redis primary's node "+prim[0].Node+" ("+primary+") is killed, then started", func(f *faultRun) { killAndStart(f, prim[0].Node) })

		By("building gate v2")
		v2, err := sut.lab.Stacks().BuildGoImage(ctx, images.GoImage{
			Repo: "swarmlab/gate", ModuleDir: moduleRoot(), Packages: []string{"./app/crud/cmd/gate"}, LDFlags: "-X main.version=v2",
		})
		Expect(err).NotTo(HaveOccurred())
		run("update", "the gate rolls to v2", func(f *faultRun) {
			since := time.Now()
			sut.setImage(ctx, crudGate, v2)
			waitFor(ctx, "the update of "+crudGate+" to complete", updateTimeout, sut.updateEnded(crudGate, since, swarm.UpdateStateCompleted))
			f.recovered("update completed")
		})
		sut.waitTasksOn(ctx, crudGate, v2)

		By("stopping, reading every key back, and checking the history")
		rep := d.Stop()
		stopped = true
		record().note("crud: %d requests, %d ok, %d failed, %d rejected, %d unauthorized; %d item operations; writes %d done %.0f/s p50 %.1f ms p99 %.1f ms; reads %d done %.0f/s p50 %.1f ms p99 %.1f ms; linearizability: %s; final read-back: %d keys, lost %d, unexpected %d, uncertain %d; verdict: %s",
			rep.Requests, rep.OK, rep.Failed, rep.Rejected, rep.Unauthorized, rep.Ops,
			rep.Bench.Writes.Done, rep.Bench.Writes.PerSec, rep.Bench.Writes.P50ms, rep.Bench.Writes.P99ms,
			rep.Bench.Reads.Done, rep.Bench.Reads.PerSec, rep.Bench.Reads.P50ms, rep.Bench.Reads.P99ms,
			rep.Linearizability.Verdict, rep.Final.Keys, len(rep.Final.Lost), len(rep.Final.Unexpected), rep.Final.Uncertain, rep.Result)
		for _, w := range windows {
			if w.kind == "database" {
				stall := history.LongestWriteGap(rep.History, w.begin.Sub(rep.Started), w.recovered.Sub(rep.Started))
				record().note("%s: writes stalled at most %.1fs (the longest stretch with no write acknowledged); the member was Synced again %.1fs after its node was Ready and every service ran", w.fault, stall.Seconds(), dbCatchUp.Seconds())
			}
			during, after := rep.Between(w.begin, w.recovered), rep.Between(w.recovered, w.next)
			record().note("%s: during the fault (%.1fs) %d ok, %d failed (allowed %d); in the %.1fs after: %d ok, %d failed",
				w.fault, w.recovered.Sub(w.begin).Seconds(), during.OK, during.Failures(), crudAllowed[w.kind],
				w.next.Sub(w.recovered).Seconds(), after.OK, after.Failures())
		}
		Expect(rep.SessionErr()).NotTo(HaveOccurred(), "no session lost: no 401, every requests counter only grows")
		Expect(rep.DurabilityErr()).NotTo(HaveOccurred(), "every acknowledged write readable with its latest value")
		Expect(rep.Verdict()).To(Succeed(), "the history, checked for linearizability per item (porcupine; visualization: %s)", viz)
		for _, w := range windows {
			Expect(rep.FailedBetween(w.begin, w.recovered, crudAllowed[w.kind])).To(Succeed(), "failed requests while %s", w.fault)
			Expect(rep.FailedBetween(w.recovered, w.next, 0)).To(Succeed(), "failed requests after recovering from: %s", w.fault)
			Expect(rep.Between(w.begin, w.next).OK).To(BeNumerically(">", 0), "requests answered while %s", w.fault)
		}

		By("reading the log of the gate task that died with " + killedGate.Node + " (swarmlab logs)")
		var out, errb bytes.Buffer
		Expect(lab.Logs(ctx, sut.lab.Name(), crudGate, lab.LogsOptions{}, &out, &errb)).To(Succeed(), "swarmlab logs %s %s: %s", sut.lab.Name(), crudGate, errb.String())
		var lines int
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, killedGate.ID) && strings.Contains(l, `"service":"gate"`) {
				lines++
			}
		}
		record().note("logs: %d request lines of gate task %s (killed with %s) read back with swarmlab logs", lines, killedGate.ID, killedGate.Node)
		Expect(lines).To(BeNumerically(">", 0), "request lines of gate task %s, killed with its node %s, in swarmlab logs %s (%d bytes read)", killedGate.ID, killedGate.Node, crudGate, out.Len())
	}, NodeTimeout(20*time.Minute))
})

// redisPrimary asks the sentinels which Redis service is the sessions'
// primary now ("redis-a"), through the node that runs sentinel1.
func (s *system) redisPrimary(ctx context.Context) string {
	GinkgoHelper()
	var name string
	waitFor(ctx, "a sentinel to name the Redis primary", convergeTimeout, func(ctx context.Context) wait.Result {
		for _, svc := range []string{"sentinel1", "sentinel2", "sentinel3"} {
			tasks := s.runningTasks(ctx, crudStack+"_"+svc)
			if len(tasks) == 0 {
				continue
			}
			out, err := s.node(tasks[0].Node).Exec(ctx, "sh", "-c",
				"docker exec $(docker ps -q -f label=com.docker.swarm.task.id="+tasks[0].ID+") redis-cli -p 26379 --raw SENTINEL get-master-addr-by-name sessions")
			if err != nil {
				continue
			}
			if first := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]); strings.HasPrefix(first, "redis-") {
				name = first
				return wait.Done("primary " + name)
			}
		}
		return wait.Continue("no sentinel named a redis-* primary yet")
	})
	return name
}

// galeraSynced holds when the database member on node is Synced (its
// image's health check: wsrep_ready ON, wsrep_local_state 4).
func (s *system) galeraSynced(node string) wait.Check {
	return func(ctx context.Context) wait.Result {
		out, err := s.node(node).Exec(ctx, "sh", "-c",
			"c=$(docker ps -q -f label=com.docker.swarm.service.name="+crudStack+"_db | head -n 1); [ -n \"$c\" ] || { echo no db container; exit 1; }; docker exec \"$c\" swarmlab-galera-health 2>&1")
		if err != nil {
			return wait.Continue("%s: %v %s", node, err, strings.TrimSpace(out))
		}
		return wait.Done("Synced")
	}
}

// waitTasksOn waits until every running task of service runs image.
func (s *system) waitTasksOn(ctx context.Context, service, image string) {
	GinkgoHelper()
	waitFor(ctx, service+" to run "+image+" only", updateTimeout, s.tasksCheck(service, func(tasks []placedTask) wait.Result {
		n := 0
		for _, t := range tasks {
			if t.running() {
				if t.Spec.ContainerSpec == nil || !strings.Contains(t.Spec.ContainerSpec.Image, strings.TrimPrefix(image, "swarmlab/")) {
					return wait.Continue("task %s runs %s", t.ID, t.Spec.ContainerSpec.Image)
				}
				n++
			}
		}
		if n == 0 {
			return wait.Continue("no running task")
		}
		return wait.Done(fmt.Sprintf("%d tasks on %s", n, image))
	}))
}
