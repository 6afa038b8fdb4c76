//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/fault"
	"github.com/swarmlab/swarmlab/lab/probe"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// Load balancing is fair when each of N replicas answers R/N requests, give
// or take fairShare of that. Both balancers are deterministic round robin:
// HAProxy (balance roundrobin) per request, IPVS per connection on each
// node (so the mesh variant opens one per request): R/N is then met to
// within a request or two (per node for the mesh), and with R = 300 over 3
// replicas ±10% (90–110) catches a replica left out, hogging, or favoured
// by a few dozen requests.
const (
	lbRequests  = 300
	fairShare   = 0.10
	meshService = "e2e-mesh"
	meshPort    = 8089
)

var _ = Describe("Ingress load balancing", Label("ingress"), func() {
	Context("edge-proxy variant", func() {
		BeforeEach(func(ctx SpecContext) { sut.expectWhole(ctx) }, NodeTimeout(cleanupTimeout))

		It(fmt.Sprintf("spreads requests through the edge over every replica, each within ±%.0f%% of R/N (R = %d)", fairShare*100, lbRequests), func(ctx SpecContext) {
			tasks := sut.runningTasks(ctx, echoService)
			By(fmt.Sprintf("sending %d requests through the edge at %s", lbRequests, sut.edgeURL))
			sum := probe.Sequence(ctx, sut.edgeURL, lbRequests, requestTimeout)
			expectNoFailures(sum, "through the edge")
			expectFair(sum, tasks)
		}, SpecTimeout(specTimeout))

		It(fmt.Sprintf("takes a killed replica out of rotation, failing at most %d requests, and 0 once it is out", maxFailedInFlight), func(ctx SpecContext) {
			victim := sut.runningTasks(ctx, echoService)[0]
			ip := taskIP(victim.Task, stackName+"_edge")
			Expect(ip).NotTo(BeEmpty(), "task %s has no address on the edge network", shortID(victim.ID))
			waitFor(ctx, "HAProxy to have "+ip+" in rotation", edgeTimeout, sut.edgeHas(ip))
			traffic := sut.startTraffic()
			waitFor(ctx, "traffic to flow through the edge", edgeTimeout, func(context.Context) wait.Result {
				s := traffic.Since(time.Time{})
				if s.Requests-s.Failed < 20 {
					return wait.Continue("%s", s)
				}
				return wait.Done(s.String())
			})

			f := beginFault(ctx, fmt.Sprintf("kill replica %s (%s) on %s", shortID(victim.ID), ip, victim.Node), traffic)
			By(fmt.Sprintf("killing the container of task %s on node %s", shortID(victim.ID), victim.Node))
			_, err := fault.KillTask(ctx, sut.lab, sut.mustManager(ctx), victim.Task)
			Expect(err).NotTo(HaveOccurred())
			waitFor(ctx, "HAProxy to take "+ip+" out of rotation", edgeTimeout, sut.edgeDropped(ip))
			f.detected("out of HAProxy's rotation")
			dropped := time.Now()
			waitFor(ctx, fmt.Sprintf("%s to run %d tasks again", echoService, echoReplicas), rescheduleTimeout, sut.tasksRunning(echoService, echoReplicas, placement{}))
			waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
			f.recovered("replaced, and answering through the edge")
			sum := f.end(ctx)
			expectFailedAtMost(sum, maxFailedInFlight, "from the kill until the replacement answered")
			expectNoFailuresSince(ctx, traffic, dropped, "from when the dead replica was out of rotation")
		}, SpecTimeout(specTimeout))
	})

	Context("routing-mesh variant", func() {
		BeforeEach(func(ctx SpecContext) {
			if why, ok := sut.noIPVS(ctx); ok {
				Skip("not run: " + why)
			}
			sut.expectWhole(ctx)
		}, NodeTimeout(cleanupTimeout))

		It(fmt.Sprintf("answers on every node's published port and spreads requests over every replica, each within ±%.0f%% of R/N (R = %d)", fairShare*100, lbRequests), func(ctx SpecContext) {
			mgr := sut.mustManager(ctx)
			replicas := uint64(echoReplicas)
			By(fmt.Sprintf("creating %s: echo published on :%d in ingress mode", meshService, meshPort))
			created, err := mgr.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
				Annotations: swarm.Annotations{Name: meshService},
				Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
				TaskTemplate: swarm.TaskSpec{
					ContainerSpec: &swarm.ContainerSpec{Image: sut.echoImage, Env: []string{"TASK={{.Task.Name}}", "NODE={{.Node.Hostname}}"}},
					Placement:     &swarm.Placement{Constraints: []string{"node.role == worker"}},
				},
				EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: []swarm.PortConfig{{
					Protocol: network.TCP, TargetPort: 8080, PublishedPort: meshPort, PublishMode: swarm.PortConfigPublishModeIngress,
				}}},
			}})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx context.Context) {
				if mgr, err := sut.manager(ctx); err == nil {
					mgr.ServiceRemove(ctx, created.ID, client.ServiceRemoveOptions{})
				}
			})
			waitFor(ctx, fmt.Sprintf("%s to run %d tasks", meshService, replicas), convergeTimeout, sut.tasksRunning(meshService, int(replicas), placement{}))
			tasks := sut.runningTasks(ctx, meshService)

			var all []probe.Outcome
			nodes := sut.lab.Cluster().Nodes()
			per := lbRequests / len(nodes)
			for _, n := range nodes {
				url := "http://" + sut.published(n.Name(), meshPort) + "/"
				waitFor(ctx, "node "+n.Name()+" to answer on the routing mesh at "+url, edgeTimeout, func(ctx context.Context) wait.Result {
					if s := probe.Sequence(ctx, url, 1, requestTimeout); s.Failed > 0 {
						return wait.Continue("%s", s)
					}
					return wait.Done("answers")
				})
				sum := probe.SequenceNewConns(ctx, url, per, requestTimeout)
				expectNoFailures(sum, "through the routing mesh on "+n.Name())
				all = append(all, sum.Outcomes...)
			}
			expectFair(probe.Summarize(all), tasks)
		}, SpecTimeout(specTimeout))
	})
})

// expectFair checks that every task answered its fair share of sum, within
// fairShare, and that nothing else answered (probe.Fair).
func expectFair(sum probe.Summary, tasks []placedTask) {
	GinkgoHelper()
	counts := map[string]int{}
	for task, c := range sum.Tasks {
		counts[shortID(taskID(task))] += c
	}
	var want, shares []string
	for _, t := range tasks {
		id := shortID(t.ID)
		want = append(want, id)
		shares = append(shares, fmt.Sprintf("%s@%s:%d", id, t.Node, counts[id]))
	}
	sort.Strings(shares)
	record().note("%d requests over %d replicas, each allowed ±%.0f%% of R/N: %s", sum.Requests, len(tasks), fairShare*100, strings.Join(shares, " "))
	Expect(probe.Fair(counts, want, fairShare)).To(Succeed(), "replies by replica (task@node:count): %s", strings.Join(shares, " "))
}

// noIPVS says whether the routing mesh cannot route here, and why: only
// when the lab's preflight found no IPVS. When the ingress mode was set by
// SWARMLAB_INGRESS, preflight did not look, so this looks as it does.
func (s *system) noIPVS(ctx context.Context) (string, bool) {
	info := s.lab.Info()
	switch {
	case info.Ingress == lab.RoutingMesh:
		return "", false
	case info.Ingress == lab.EdgeProxy && strings.Contains(info.IngressWhy, "no IPVS"):
		return fmt.Sprintf("the lab's ingress mode is %s (%s)", info.Ingress, info.IngressWhy), true
	}
	first := s.lab.Cluster().Nodes()[0]
	node := first.Name()
	if _, err := first.Exec(ctx, "sh", "-c", "test -e /proc/net/ip_vs || { modprobe ip_vs 2>/dev/null; test -e /proc/net/ip_vs; }"); err != nil {
		return fmt.Sprintf("the lab's ingress mode is %s (%s), and node %s has no IPVS (/proc/net/ip_vs)", info.Ingress, info.IngressWhy, node), true
	}
	return "", false
}

// taskIP is the task's address on network (without the prefix length).
func taskIP(t swarm.Task, network string) string {
	for _, na := range t.NetworksAttachments {
		if na.Network.Spec.Name != network {
			continue
		}
		for _, a := range na.Addresses {
			return a.Addr().String()
		}
	}
	return ""
}

// edgeDropped holds when no server in HAProxy's rotation has address ip.
func (s *system) edgeDropped(ip string) wait.Check {
	return func(ctx context.Context) wait.Result {
		st, err := s.edgeStatsRead(ctx)
		if err != nil {
			return wait.Continue("%v", err)
		}
		if slices.Contains(st.up(), ip) {
			return wait.Continue("in rotation: %v", st.up())
		}
		return wait.Done(fmt.Sprintf("in rotation: %v", st.up()))
	}
}

// edgeHas holds when a server in HAProxy's rotation has address ip.
func (s *system) edgeHas(ip string) wait.Check {
	return func(ctx context.Context) wait.Result {
		st, err := s.edgeStatsRead(ctx)
		if err != nil {
			return wait.Continue("%v", err)
		}
		if !slices.Contains(st.up(), ip) {
			return wait.Continue("in rotation: %v", st.up())
		}
		return wait.Done(fmt.Sprintf("in rotation: %v", st.up()))
	}
}
