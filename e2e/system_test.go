//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/probe"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/stack"
	labswarm "github.com/swarmlab/swarmlab/lab/swarm"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// system is the system under test: the lab BeforeSuite brought up, with the
// e2e stack on it.
type system struct {
	lab  *lab.Lab
	topo *topology.Topology
	// name is the topology's own name (Up renames topo after the lab).
	name string
	// echoImage is the v1 image of echo, as nodes pull it.
	echoImage string
	// edgeURL is the app's entry point: HAProxy on the node running the
	// edge task. Kept, so specs can use it while no manager answers.
	edgeURL, statsURL string
}

// sut is set by BeforeSuite.
var sut *system

// manager returns a client for a manager that answers for the swarm.
func (s *system) manager(ctx context.Context) (client.APIClient, error) {
	c, _, err := s.lab.Manager(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// mustManager is manager for a spec: no manager fails the spec.
func (s *system) mustManager(ctx context.Context) client.APIClient {
	GinkgoHelper()
	c, err := s.manager(ctx)
	Expect(err).NotTo(HaveOccurred(), "no manager answers for the swarm")
	return c
}

// node returns the lab's handle on a node.
func (s *system) node(name string) provider.Node {
	GinkgoHelper()
	n, err := s.lab.Node(name)
	Expect(err).NotTo(HaveOccurred())
	return n
}

// published is where this machine reaches port as the named node
// publishes it: the provider says.
func (s *system) published(node string, port uint16) string {
	GinkgoHelper()
	addr, err := s.lab.Cluster().PublishedAddr(node, port)
	Expect(err).NotTo(HaveOccurred())
	return addr
}

// do applies a fault or repair, failing the spec if the provider cannot.
func (s *system) do(ctx context.Context, node string, a provider.Action) {
	GinkgoHelper()
	By(fmt.Sprintf("%s node %s", a, node))
	Expect(s.lab.Do(ctx, node, a)).To(Succeed())
}

// requireWorkers skips the spec on topologies with fewer than n workers.
func requireWorkers(n int) {
	if got := len(sut.topo.Workers()); got < n {
		Skip(fmt.Sprintf("not run on %s: needs at least %d workers, the topology has %d", sut.name, n, got))
	}
}

// requireManagers skips the spec on topologies with fewer than n managers.
func requireManagers(n int) {
	if got := len(sut.topo.Managers()); got < n {
		Skip(fmt.Sprintf("not run on %s: needs at least %d managers, the topology has %d", sut.name, n, got))
	}
}

// waitFor polls check until it holds and returns how long that took; when it
// does not hold in time the spec fails, quoting what the check last saw.
func waitFor(ctx context.Context, what string, timeout time.Duration, check wait.Check) time.Duration {
	GinkgoHelper()
	start := time.Now()
	seen, err := wait.For(ctx, what, timeout, poll, check)
	d := time.Since(start)
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("  %s: after %.2fs (%s)\n", what, d.Seconds(), seen)
	return d
}

// hostnames maps swarm node IDs to hostnames.
func hostnames(ctx context.Context, mgr client.APIClient) (map[string]string, error) {
	nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, n := range nodes.Items {
		m[n.ID] = n.Description.Hostname
	}
	return m, nil
}

// liveTasks lists a service's tasks that the swarm wants running, with the
// hostname of their node.
func liveTasks(ctx context.Context, mgr client.APIClient, service string) ([]placedTask, error) {
	tasks, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", service).Add("desired-state", "running")})
	if err != nil {
		return nil, err
	}
	hosts, err := hostnames(ctx, mgr)
	if err != nil {
		return nil, err
	}
	out := make([]placedTask, 0, len(tasks.Items))
	for _, t := range tasks.Items {
		out = append(out, placedTask{Task: t, Node: hosts[t.NodeID]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slot < out[j].Slot })
	return out, nil
}

type placedTask struct {
	swarm.Task
	Node string // hostname
}

func (t placedTask) running() bool { return t.Status.State == swarm.TaskStateRunning }

// runningTasks returns the service's running tasks, failing the spec if
// they cannot be listed.
func (s *system) runningTasks(ctx context.Context, service string) []placedTask {
	GinkgoHelper()
	all, err := liveTasks(ctx, s.mustManager(ctx), service)
	Expect(err).NotTo(HaveOccurred())
	var run []placedTask
	for _, t := range all {
		if t.running() {
			run = append(run, t)
		}
	}
	return run
}

// busiestWorker is the worker running most of service's tasks: the one
// whose loss hurts the service most.
func (s *system) busiestWorker(ctx context.Context, service string) string {
	GinkgoHelper()
	count := map[string]int{}
	for _, t := range s.runningTasks(ctx, service) {
		count[t.Node]++
	}
	best := ""
	for _, w := range s.topo.Workers() {
		if best == "" || count[w.Name] > count[best] {
			best = w.Name
		}
	}
	Expect(count[best]).To(BeNumerically(">", 0), "no worker runs a task of %s: %v", service, count)
	return best
}

// workerUnderFault picks the busiest worker as a fault's target, starts
// steady traffic through the edge, and has the lab restored after the spec:
// the opening of every spec that breaks one worker.
func (s *system) workerUnderFault(ctx context.Context) (string, *probe.Traffic) {
	GinkgoHelper()
	w := s.busiestWorker(ctx, echoService)
	traffic := s.startTraffic()
	DeferCleanup(func(ctx context.Context) { s.restore(ctx) }, NodeTimeout(cleanupTimeout))
	return w, traffic
}

// waitEchoOff waits until echo runs all its replicas with none on node.
func (s *system) waitEchoOff(ctx context.Context, node string, timeout time.Duration) {
	GinkgoHelper()
	waitFor(ctx, fmt.Sprintf("%s to run %d tasks, none on %s", echoService, echoReplicas, node), timeout,
		s.tasksRunning(echoService, echoReplicas, placement{avoid: node}))
}

// waitEchoOn waits until echo runs all its replicas, some on node again.
func (s *system) waitEchoOn(ctx context.Context, node string) {
	GinkgoHelper()
	waitFor(ctx, fmt.Sprintf("%s to run %d tasks, some on %s", echoService, echoReplicas, node), convergeTimeout,
		s.tasksRunning(echoService, echoReplicas, placement{use: node}))
}

// describeTasks renders tasks as "w1:running w2:starting (error)".
func describeTasks(tasks []placedTask) string {
	var parts []string
	for _, t := range tasks {
		p := fmt.Sprintf("%s.%d@%s:%s", shortID(t.ID), t.Slot, t.Node, t.Status.State)
		if t.Status.Err != "" {
			p += " (" + t.Status.Err + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "no tasks"
	}
	return strings.Join(parts, ", ")
}

func shortID(id string) string {
	if len(id) > 6 {
		return id[:6]
	}
	return id
}

// --- Checks: each observes the swarm once and says what it saw. ---

// viaManager makes a check that observes the swarm through whichever
// manager answers; while none does, it says why and keeps waiting.
func (s *system) viaManager(observe func(ctx context.Context, mgr client.APIClient) wait.Result) wait.Check {
	return func(ctx context.Context) wait.Result {
		mgr, err := s.manager(ctx)
		if err != nil {
			return wait.Continue("%v", err)
		}
		return observe(ctx, mgr)
	}
}

// nodeCheck judges one node as the managers see it.
func (s *system) nodeCheck(name string, judge func(n swarm.Node) wait.Result) wait.Check {
	return s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		n, err := labswarm.NodeByHostname(ctx, mgr, name)
		if err != nil {
			return wait.Continue("%v", err)
		}
		return judge(n)
	})
}

// tasksCheck judges the tasks the swarm wants running for service.
func (s *system) tasksCheck(service string, judge func(tasks []placedTask) wait.Result) wait.Check {
	return s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		tasks, err := liveTasks(ctx, mgr, service)
		if err != nil {
			return wait.Continue("task list: %v", err)
		}
		return judge(tasks)
	})
}

// nodeIs holds when the managers see node in state.
func (s *system) nodeIs(node string, want swarm.NodeState) wait.Check {
	return s.nodeCheck(node, func(n swarm.Node) wait.Result {
		if n.Status.State == want {
			return wait.Done(fmt.Sprintf("%s is %s", node, want))
		}
		return wait.Continue("%s is %s", node, n.Status.State)
	})
}

// placement says where a service's tasks must (not) run.
type placement struct {
	avoid string // no task on this node
	use   string // at least one task on this node
	image string // every task runs this image
}

// tasksRunning holds when service runs exactly n tasks, all of them running
// (no task starting or left over), placed as p says.
func (s *system) tasksRunning(service string, n int, p placement) wait.Check {
	return s.tasksCheck(service, func(tasks []placedTask) wait.Result {
		seen := describeTasks(tasks)
		running, onAvoid, onUse, otherImage := 0, 0, 0, 0
		for _, t := range tasks {
			if t.running() {
				running++
			}
			if t.Node == p.avoid {
				onAvoid++
			}
			if t.Node == p.use && t.running() {
				onUse++
			}
			if p.image != "" && t.Spec.ContainerSpec != nil && t.Spec.ContainerSpec.Image != p.image {
				otherImage++
			}
		}
		switch {
		case running != n || len(tasks) != n:
			return wait.Continue("%d of %d running, %d wanted running: %s", running, n, len(tasks), seen)
		case p.avoid != "" && onAvoid > 0:
			return wait.Continue("%d tasks still on %s: %s", onAvoid, p.avoid, seen)
		case p.use != "" && onUse == 0:
			return wait.Continue("no task on %s yet: %s", p.use, seen)
		case otherImage > 0:
			return wait.Continue("%d tasks not on image %s yet: %s", otherImage, p.image, seen)
		}
		return wait.Done(seen)
	})
}

// taskEnded holds when the swarm has seen task stop (failed, shut down...).
func (s *system) taskEnded(id string) wait.Check {
	return s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		t, err := mgr.TaskInspect(ctx, id, client.TaskInspectOptions{})
		if err != nil {
			return wait.Continue("task inspect: %v", err)
		}
		st := t.Task.Status
		switch st.State {
		case swarm.TaskStateFailed, swarm.TaskStateShutdown, swarm.TaskStateComplete, swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
			return wait.Done(fmt.Sprintf("task %s is %s (%s)", shortID(id), st.State, st.Err))
		}
		return wait.Continue("task %s is %s", shortID(id), st.State)
	})
}

// updateEnded holds when the update of service started at or after since
// ends in want ("completed", "rollback_completed"); ending any other way
// fails the wait at once.
func (s *system) updateEnded(service string, since time.Time, want swarm.UpdateState) wait.Check {
	return s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		svc, err := mgr.ServiceInspect(ctx, service, client.ServiceInspectOptions{})
		if err != nil {
			return wait.Continue("service inspect: %v", err)
		}
		us := svc.Service.UpdateStatus
		if us == nil || us.StartedAt == nil || us.StartedAt.Before(since) {
			return wait.Continue("the update has not started")
		}
		seen := fmt.Sprintf("%s: %s", us.State, us.Message)
		switch us.State {
		case want:
			return wait.Done(seen)
		case swarm.UpdateStateCompleted, swarm.UpdateStatePaused, swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
			return wait.Fail(fmt.Errorf("the update of %s ended %q, want %q", service, seen, want))
		}
		return wait.Continue("%s", seen)
	})
}

// servicesConverged holds when every service of the swarm runs all its
// tasks, as whichever manager answers sees it.
func (s *system) servicesConverged() wait.Check {
	return s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		return stack.Converged(mgr, "")(ctx)
	})
}

// --- Changes made through a manager. ---

// updateService applies change to service's spec.
func (s *system) updateService(ctx context.Context, service string, change func(*swarm.ServiceSpec)) {
	GinkgoHelper()
	mgr := s.mustManager(ctx)
	svc, err := mgr.ServiceInspect(ctx, service, client.ServiceInspectOptions{})
	Expect(err).NotTo(HaveOccurred())
	spec := svc.Service.Spec
	change(&spec)
	_, err = mgr.ServiceUpdate(ctx, svc.Service.ID, client.ServiceUpdateOptions{Version: svc.Service.Version, Spec: spec})
	Expect(err).NotTo(HaveOccurred(), "updating service %s", service)
}

func (s *system) scale(ctx context.Context, service string, n uint64) {
	GinkgoHelper()
	By(fmt.Sprintf("scaling %s to %d", service, n))
	s.updateService(ctx, service, func(spec *swarm.ServiceSpec) { spec.Mode.Replicated.Replicas = &n })
}

func (s *system) setImage(ctx context.Context, service, image string) {
	GinkgoHelper()
	By(fmt.Sprintf("updating %s to image %s", service, image))
	s.updateService(ctx, service, func(spec *swarm.ServiceSpec) { spec.TaskTemplate.ContainerSpec.Image = image })
}

// forceUpdate replaces every task of service, as `docker service update
// --force` does (the scheduler places the new tasks afresh), and waits
// until the update completes.
func (s *system) forceUpdate(ctx context.Context, service string) {
	GinkgoHelper()
	By("force-updating " + service)
	since := time.Now()
	s.updateService(ctx, service, func(spec *swarm.ServiceSpec) { spec.TaskTemplate.ForceUpdate++ })
	waitFor(ctx, "the forced update of "+service+" to complete", updateTimeout, s.updateEnded(service, since, swarm.UpdateStateCompleted))
}

// waitEdgeSettled waits until the edge answers from exactly echo's running
// tasks. The tasks an update replaced leave the swarm's DNS at once, stop 2 s
// later and then fall out of HAProxy's rotation: a fault whose traffic
// window ends here covers their going, whatever the update's monitor.
func (s *system) waitEdgeSettled(ctx context.Context) {
	GinkgoHelper()
	s.waitEdgeSettledWithin(ctx, edgeTimeout)
}

func (s *system) waitEdgeSettledWithin(ctx context.Context, d time.Duration) {
	GinkgoHelper()
	waitFor(ctx, "the edge to answer from every running task, and from no replaced one", d, s.edgeServesAll())
}

func (s *system) setAvailability(ctx context.Context, node string, a swarm.NodeAvailability) {
	GinkgoHelper()
	By(fmt.Sprintf("setting node %s availability to %s", node, a))
	mgr := s.mustManager(ctx)
	n, err := labswarm.NodeByHostname(ctx, mgr, node)
	Expect(err).NotTo(HaveOccurred())
	spec := n.Spec
	spec.Availability = a
	_, err = mgr.NodeUpdate(ctx, n.ID, client.NodeUpdateOptions{Version: n.Version, Spec: spec})
	Expect(err).NotTo(HaveOccurred(), "updating node %s", node)
}

// echoImageVersion builds echo as version v (broken: its health check
// fails) and returns the reference nodes pull. A build prebuildEcho started
// is waited for and used; if it failed, echo is built here.
func (s *system) echoImageVersion(ctx context.Context, v string, broken bool) string {
	GinkgoHelper()
	ld := echoLDFlags(v, broken)
	if b, ok := echoBuilds[ld]; ok {
		select {
		case <-b.done:
			if b.err == nil {
				By(fmt.Sprintf("using echo %s (%s), built while the e2e stack came up: %s", v, ld, b.ref))
				return b.ref
			}
			GinkgoWriter.Printf("building echo %s in the background failed (%v): building it now\n", v, b.err)
		case <-ctx.Done():
		}
	}
	By(fmt.Sprintf("building echo %s (%s)", v, ld))
	ref, err := s.buildEcho(ctx, ld)
	Expect(err).NotTo(HaveOccurred())
	return ref
}

func echoLDFlags(v string, broken bool) string {
	ld := "-X main.version=" + v
	if broken {
		ld += " -X main.broken=true"
	}
	return ld
}

func (s *system) buildEcho(ctx context.Context, ld string) (string, error) {
	return s.lab.Stacks().BuildGoImage(ctx, images.GoImage{Repo: echoImageRep, ModuleDir: moduleRoot(), Packages: []string{"./app/echo"}, LDFlags: ld})
}

// echoBuild is an image of echo built in the background.
type echoBuild struct {
	done chan struct{}
	ref  string
	err  error
}

// echoBuilds are the builds prebuildEcho started, by their ldflags. Set
// before any spec runs, read only after.
var echoBuilds = map[string]*echoBuild{}

// prebuildEcho builds, one after the other in the background, the versions
// of echo the rolling-update specs roll out (v2, and the broken v3), when the
// run includes them: the builds overlap the e2e stack's start instead of
// adding to those specs. It must be called before the specs run.
func (s *system) prebuildEcho() {
	if !Label("rolling-update").MatchesLabelFilter(GinkgoLabelFilter()) {
		return
	}
	var order []*echoBuild
	var flags []string
	for _, v := range []struct {
		v      string
		broken bool
	}{{"v2", false}, {"v3", true}} {
		ld := echoLDFlags(v.v, v.broken)
		b := &echoBuild{done: make(chan struct{})}
		echoBuilds[ld] = b
		order = append(order, b)
		flags = append(flags, ld)
	}
	go func() {
		// Not the BeforeSuite's context: it ends when BeforeSuite does.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for i, b := range order {
			b.ref, b.err = s.buildEcho(ctx, flags[i])
			close(b.done)
		}
	}()
}

// --- Putting the lab back the way the topology describes it. ---

// restore undoes whatever a spec may have left: nodes stopped, paused or
// partitioned, availability changed, echo scaled. It says what it repaired.
func (s *system) restore(ctx context.Context) []string {
	var repaired []string
	if err := s.lab.Refresh(ctx); err != nil {
		return []string{"refresh: " + err.Error()}
	}
	for _, n := range s.lab.Cluster().Nodes() {
		var a provider.Action
		switch st := n.State(); {
		case st == provider.Paused:
			a = provider.Unpause
		case !st.Running():
			a = provider.Start
		case n.Partitioned():
			a = provider.Heal
		default:
			continue
		}
		err := s.lab.Do(ctx, n.Name(), a)
		repaired = append(repaired, fmt.Sprintf("%s %s: %v", a, n.Name(), errText(err)))
	}
	mgr, err := s.manager(ctx)
	if err != nil {
		return append(repaired, err.Error())
	}
	for _, tn := range s.topo.Nodes {
		n, err := labswarm.NodeByHostname(ctx, mgr, tn.Name)
		if err != nil || tn.Availability == "" || string(n.Spec.Availability) == tn.Availability {
			continue
		}
		spec := n.Spec
		spec.Availability = swarm.NodeAvailability(tn.Availability)
		_, err = mgr.NodeUpdate(ctx, n.ID, client.NodeUpdateOptions{Version: n.Version, Spec: spec})
		repaired = append(repaired, fmt.Sprintf("availability of %s back to %s: %v", tn.Name, tn.Availability, errText(err)))
	}
	if svc, err := mgr.ServiceInspect(ctx, echoService, client.ServiceInspectOptions{}); err == nil {
		if r := svc.Service.Spec.Mode.Replicated; r != nil && (r.Replicas == nil || *r.Replicas != echoReplicas) {
			spec := svc.Service.Spec
			n := uint64(echoReplicas)
			spec.Mode.Replicated.Replicas = &n
			_, err = mgr.ServiceUpdate(ctx, svc.Service.ID, client.ServiceUpdateOptions{Version: svc.Service.Version, Spec: spec})
			repaired = append(repaired, fmt.Sprintf("%s back to %d replicas: %v", echoService, echoReplicas, errText(err)))
		}
	}
	return repaired
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// expectWhole waits until the lab is what the topology describes (every
// node Ready with its role, labels and availability, one leader), every
// service runs all its tasks, echo runs its replicas, and the edge answers
// from each of them. Specs start from there.
func (s *system) expectWhole(ctx context.Context) {
	GinkgoHelper()
	if repaired := s.restore(ctx); len(repaired) > 0 {
		GinkgoWriter.Printf("repaired what an earlier spec left: %s\n", strings.Join(repaired, "; "))
	}
	ms, err := s.lab.Members()
	Expect(err).NotTo(HaveOccurred())
	waitFor(ctx, "the swarm to match the topology", convergeTimeout, s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		return labswarm.Converged(mgr, ms)(ctx)
	}))
	waitFor(ctx, "every service to run all its tasks", convergeTimeout, s.servicesConverged())
	waitFor(ctx, fmt.Sprintf("%s to run %d tasks", echoService, echoReplicas), convergeTimeout, s.tasksRunning(echoService, echoReplicas, placement{}))
	s.rebalance(ctx)
	s.refreshEdge(ctx)
	waitFor(ctx, "the edge to answer from every running echo task", edgeTimeout, s.edgeServesAll())
}

func containsAny(s string, words ...string) bool {
	return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(strings.ToLower(s), w) })
}

// rebalance spreads echo's tasks over the workers again when a fault left
// them piled up (the swarm never moves running tasks by itself): a spec that
// kills "the busiest worker" must not kill every replica at once.
func (s *system) rebalance(ctx context.Context) {
	GinkgoHelper()
	count := map[string]int{}
	for _, w := range s.topo.Workers() {
		count[w.Name] = 0
	}
	for _, t := range s.runningTasks(ctx, echoService) {
		count[t.Node]++
	}
	lo, hi := echoReplicas, 0
	for _, c := range count {
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi-lo <= 1 {
		return
	}
	GinkgoWriter.Printf("echo's tasks are piled up (%v): spreading them again\n", count)
	s.forceUpdate(ctx, echoService)
	waitFor(ctx, fmt.Sprintf("%s to run %d tasks", echoService, echoReplicas), convergeTimeout, s.tasksRunning(echoService, echoReplicas, placement{}))
}
