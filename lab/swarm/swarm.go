// Package swarm forms a Docker Swarm out of engines and tells when it has
// converged. It knows nothing of where the engines come from.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/wait"
)

// Timeouts, tuned to what a lab is configured to do: a node joins in about a
// second; with a 1 s dispatcher heartbeat a lost node is Down in ~3 s.
const (
	JoinTimeout     = 60 * time.Second
	ConvergeTimeout = 90 * time.Second
	PollInterval    = 250 * time.Millisecond
)

// Roles, as the engine names them (and as topologies write them).
const (
	Manager = string(swarm.NodeRoleManager)
	Worker  = string(swarm.NodeRoleWorker)
)

// Member is one engine that is to be, or is, part of the swarm.
type Member struct {
	Name         string // the node's hostname
	Role         string // Manager or Worker
	Addr         string // address it advertises to its peers
	Labels       map[string]string
	Availability string // active | pause | drain
	Client       client.APIClient
}

// Options shape the swarm.
type Options struct {
	// Heartbeat is the dispatcher heartbeat; a node that misses it is
	// marked Down after a few periods.
	Heartbeat time.Duration
	// Labels are stored on the swarm itself (e.g. the ingress mode), so
	// anyone who can reach a manager can read them.
	Labels map[string]string
}

// Form runs init on the first manager, then joins the other managers and the
// workers in parallel.
func Form(ctx context.Context, members []Member, opts Options) error {
	if len(members) == 0 || members[0].Role != Manager {
		return errors.New("swarm: the first member must be a manager")
	}
	first := members[0]
	spec := swarm.Spec{Annotations: swarm.Annotations{Name: "default", Labels: opts.Labels}}
	spec.Dispatcher.HeartbeatPeriod = opts.Heartbeat
	if _, err := first.Client.SwarmInit(ctx, client.SwarmInitOptions{
		ListenAddr:    "0.0.0.0:2377",
		AdvertiseAddr: first.Addr,
		Spec:          spec,
	}); err != nil {
		return fmt.Errorf("swarm init on %s: %w", first.Name, err)
	}
	ins, err := first.Client.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return fmt.Errorf("reading join tokens from %s: %w", first.Name, err)
	}
	tokens := ins.Swarm.JoinTokens
	remote := net.JoinHostPort(first.Addr, "2377")

	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = join(ctx, m, remote, tokens)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Join makes m join, as m.Role, the swarm that via is a manager of: it reads
// the join token from via and joins through via.Addr. It gives up after
// JoinTimeout. The node then still has to be listed by the managers (see
// Listed) before its labels and availability can be set (Configure).
func Join(ctx context.Context, via, m Member) error {
	ins, err := via.Client.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return fmt.Errorf("reading join tokens from %s: %w", via.Name, err)
	}
	return join(ctx, m, net.JoinHostPort(via.Addr, "2377"), ins.Swarm.JoinTokens)
}

func join(ctx context.Context, m Member, remote string, tokens swarm.JoinTokens) error {
	token := tokens.Worker
	if m.Role == Manager {
		token = tokens.Manager
	}
	jctx, cancel := context.WithTimeout(ctx, JoinTimeout)
	defer cancel()
	if _, err := m.Client.SwarmJoin(jctx, client.SwarmJoinOptions{
		ListenAddr:    "0.0.0.0:2377",
		AdvertiseAddr: m.Addr,
		RemoteAddrs:   []string{remote},
		JoinToken:     token,
	}); err != nil {
		return fmt.Errorf("%s joining as %s via %s: %w", m.Name, m.Role, remote, err)
	}
	return nil
}

// Leave makes m leave its swarm, forced: a manager leaves even when that
// costs its swarm the quorum. Its entry stays in the node list of the
// swarm's other managers (Down) until it is removed there. An engine that
// is in no swarm has nothing to leave: that is not an error.
func Leave(ctx context.Context, m Member) error {
	if _, err := m.Client.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil && !strings.Contains(err.Error(), "not part of a swarm") {
		return fmt.Errorf("%s leaving its swarm: %w", m.Name, err)
	}
	return nil
}

// Listed holds when mgr lists a node for every member: a join returns
// before the manager lists the new node.
func Listed(mgr client.APIClient, members []Member) wait.Check {
	return listed(mgr, members, nil)
}

// WaitListed waits until Listed holds, and returns the node list it saw.
func WaitListed(ctx context.Context, mgr client.APIClient, members []Member, timeout time.Duration) ([]swarm.Node, error) {
	var nodes []swarm.Node
	_, err := wait.For(ctx, fmt.Sprintf("all %d nodes to be listed by the manager", len(members)), timeout, PollInterval, listed(mgr, members, &nodes))
	return nodes, err
}

// listed is Listed, keeping the last node list in seen (if not nil).
func listed(mgr client.APIClient, members []Member, seen *[]swarm.Node) wait.Check {
	return func(ctx context.Context) wait.Result {
		nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return wait.Continue("node list: %v", err)
		}
		if seen != nil {
			*seen = nodes.Items
		}
		byHost := ByHostname(nodes.Items)
		var missing []string
		for _, m := range members {
			if _, ok := byHost[m.Name]; !ok {
				missing = append(missing, m.Name)
			}
		}
		if len(missing) > 0 {
			return wait.Continue("not listed yet: %s", strings.Join(missing, ", "))
		}
		return wait.Done("all listed")
	}
}

// Configure applies each member's labels and availability, through mgr.
// A join returns before the manager lists the new node, so it first waits
// until every member is listed (WaitListed).
func Configure(ctx context.Context, mgr client.APIClient, members []Member) error {
	nodes, err := WaitListed(ctx, mgr, members, JoinTimeout)
	if err != nil {
		return err
	}
	byHost := ByHostname(nodes)
	var errs []error
	for _, m := range members {
		n, ok := byHost[m.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("node %s is not in the swarm", m.Name))
			continue
		}
		spec := n.Spec
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		for k, v := range m.Labels {
			spec.Labels[k] = v
		}
		if m.Availability != "" {
			spec.Availability = swarm.NodeAvailability(m.Availability)
		}
		if _, err := mgr.NodeUpdate(ctx, n.ID, client.NodeUpdateOptions{Version: n.Version, Spec: spec}); err != nil {
			errs = append(errs, fmt.Errorf("updating node %s: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Converged checks that the swarm is what members describe: every node Ready
// with its role, availability and labels, every manager reachable, exactly
// one leader, and no node missing or extra.
func Converged(mgr client.APIClient, members []Member) wait.Check {
	return func(ctx context.Context) wait.Result {
		nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return wait.Continue("node list failed: %v", err)
		}
		problems := Diff(nodes.Items, members)
		if len(problems) == 0 {
			return wait.Done(fmt.Sprintf("%d nodes ready, one leader", len(members)))
		}
		return wait.Continue("%s", strings.Join(problems, "; "))
	}
}

// WaitConverged waits until Converged holds.
func WaitConverged(ctx context.Context, mgr client.APIClient, members []Member, timeout time.Duration) error {
	what := fmt.Sprintf("the swarm to converge (%d nodes Ready, one leader)", len(members))
	_, err := wait.For(ctx, what, timeout, PollInterval, Converged(mgr, members))
	return err
}

// Diff lists how nodes differ from what members describe; empty means
// converged.
func Diff(nodes []swarm.Node, members []Member) []string {
	var problems []string
	leaders := 0
	seen := map[string]int{}
	want := map[string]Member{}
	for _, m := range members {
		want[m.Name] = m
	}
	for _, n := range nodes {
		host := n.Description.Hostname
		m, ok := want[host]
		if !ok {
			problems = append(problems, fmt.Sprintf("unexpected node %s (%s)", host, n.Status.State))
			continue
		}
		seen[host]++
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			leaders++
		}
		if n.Status.State != swarm.NodeStateReady {
			problems = append(problems, fmt.Sprintf("%s is %s", host, n.Status.State))
			continue
		}
		if string(n.Spec.Role) != m.Role {
			problems = append(problems, fmt.Sprintf("%s is a %s, want %s", host, n.Spec.Role, m.Role))
		}
		if m.Role == Manager && (n.ManagerStatus == nil || n.ManagerStatus.Reachability != swarm.ReachabilityReachable) {
			r := "unknown"
			if n.ManagerStatus != nil {
				r = string(n.ManagerStatus.Reachability)
			}
			problems = append(problems, fmt.Sprintf("manager %s is %s", host, r))
		}
		if a := m.Availability; a != "" && string(n.Spec.Availability) != a {
			problems = append(problems, fmt.Sprintf("%s availability is %s, want %s", host, n.Spec.Availability, a))
		}
		for k, v := range m.Labels {
			if got, ok := n.Spec.Labels[k]; !ok || got != v {
				problems = append(problems, fmt.Sprintf("%s lacks label %s=%s", host, k, v))
			}
		}
	}
	for _, m := range members {
		switch seen[m.Name] {
		case 0:
			problems = append(problems, fmt.Sprintf("%s has not joined", m.Name))
		case 1:
		default:
			problems = append(problems, fmt.Sprintf("%s is in the swarm %d times", m.Name, seen[m.Name]))
		}
	}
	if leaders != 1 {
		problems = append(problems, fmt.Sprintf("%d leaders", leaders))
	}
	sort.Strings(problems)
	return problems
}
