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
// or take fairShare of that: loose enough for the routing mesh (each node
// balances on its own), tight enough to catch a replica left out or hogging.
const (
	lbRequests  = 300
	fairShare   = 0.5
	meshService = "e2e-mesh"
	meshPort    = 8089
)

var _ = Describe("Ingress load balancing", Label("ingress"), func() {
	Context("edge-proxy variant", func() {
		BeforeEach(func(ctx SpecContext) { sut.expectWhole(ctx) }, NodeTimeout(cleanupTimeout))

		It("spreads requests through the edge over every replica, each within ±50% of R/N", func(ctx SpecContext) {
			tasks := sut.runningTasks(ctx, echoService)
			By(fmt.Sprintf("sending %d requests through the edge at %s", lbRequests, sut.edgeURL))
			sum := probe.Sequence(ctx, sut.edgeURL, lbRequests, requestTimeout)
			expectNoFailures(sum, "through the edge")
			expectFair(sum, tasks)
		}, SpecTimeout(specTimeout))

		It(fmt.Sprintf("takes a killed replica out of rotation, failing at most %d requests", maxFailedInFlight), func(ctx SpecContext) {
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
			waitFor(ctx, fmt.Sprintf("%s to run %d tasks again", echoService, echoReplicas), rescheduleTimeout, sut.tasksRunning(echoService, echoReplicas, placement{}))
			waitFor(ctx, "the edge to answer from every running task", edgeTimeout, sut.edgeServesAll())
			f.recovered("replaced, and answering through the edge")
			sum := f.end(ctx)
			Expect(sum.Failed).To(BeNumerically("<=", maxFailedInFlight), "requests failed through the edge: %s", sum)
		}, SpecTimeout(specTimeout))
	})

	Context("routing-mesh variant", func() {
		BeforeEach(func(ctx SpecContext) {
			if sut.lab.Info.Ingress != lab.RoutingMesh {
				Skip(fmt.Sprintf("not run: the lab's ingress mode is %s (%s)", sut.lab.Info.Ingress, sut.lab.Info.IngressWhy))
			}
			sut.expectWhole(ctx)
		}, NodeTimeout(cleanupTimeout))

		It("answers on every node's published port and spreads requests over every replica, each within ±50% of R/N", func(ctx SpecContext) {
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
			per := lbRequests / len(sut.lab.Cluster.Nodes)
			for _, n := range sut.lab.Cluster.Nodes {
				url := fmt.Sprintf("http://%s:%d/", n.Addr, meshPort)
				waitFor(ctx, "node "+n.Name+" to answer on the routing mesh at "+url, edgeTimeout, func(ctx context.Context) wait.Result {
					if s := probe.Sequence(ctx, url, 1, requestTimeout); s.Failed > 0 {
						return wait.Continue("%s", s)
					}
					return wait.Done("answers")
				})
				sum := probe.Sequence(ctx, url, per, requestTimeout)
				expectNoFailures(sum, "through the routing mesh on "+n.Name)
				all = append(all, sum.Outcomes...)
			}
			expectFair(probe.Summarize(all), tasks)
		}, SpecTimeout(specTimeout))
	})
})

// expectFair checks that every task answered its fair share of sum, within
// fairShare, and that nothing else answered.
func expectFair(sum probe.Summary, tasks []placedTask) {
	GinkgoHelper()
	n := len(tasks)
	Expect(n).To(BeNumerically(">", 0))
	fair := float64(sum.Requests) / float64(n)
	lo, hi := fair*(1-fairShare), fair*(1+fairShare)
	byID := map[string]int{}
	for task, c := range sum.Tasks {
		byID[taskID(task)] += c
	}
	var shares []string
	for _, t := range tasks {
		shares = append(shares, fmt.Sprintf("%s@%s:%d", shortID(t.ID), t.Node, byID[t.ID]))
	}
	sort.Strings(shares)
	record().note("%d requests over %d replicas (fair share %.0f, allowed %.0f–%.0f): %s", sum.Requests, n, fair, lo, hi, strings.Join(shares, " "))
	total := 0
	for _, t := range tasks {
		got := byID[t.ID]
		total += got
		Expect(float64(got)).To(BeNumerically(">=", lo), "replica %s on %s got %d of %d requests: %s", shortID(t.ID), t.Node, got, sum.Requests, strings.Join(shares, " "))
		Expect(float64(got)).To(BeNumerically("<=", hi), "replica %s on %s got %d of %d requests: %s", shortID(t.ID), t.Node, got, sum.Requests, strings.Join(shares, " "))
	}
	Expect(total).To(Equal(sum.Requests-sum.Failed), "some replies came from tasks that are not running: %v", sum.Tasks)
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
