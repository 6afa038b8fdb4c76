package lab

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// Taking a lab down is split in two. The swarm is the lab's: it removes its
// services, waits until their tasks are gone, and makes the machines leave
// the swarm (endSwarm). The machines are the provider's: Delete removes
// what the provider made on them (docker: the node containers, network and
// volumes; ssh: the registries, the images pulled from them, the partition
// rules). Where Delete removes the machines themselves (docker), the swarm
// goes with them and the lab's part is skipped: see Provider.Persistent.

// TasksGoneTimeout bounds how long down waits for the swarm's task
// containers to go once the services are removed.
const TasksGoneTimeout = time.Minute

// teardown takes lab name down, or only what run made if run is set: the
// lab's swarm (on a persistent provider's machines, through c; nil: no
// handle could be had, so no swarm to end), then the provider's part. It
// keeps going past errors.
func teardown(ctx context.Context, p provider.Provider, c provider.Cluster, name, run string) error {
	var errs []error
	if c != nil && p.Persistent() {
		errs = append(errs, endSwarm(ctx, c, name, run))
	}
	if run != "" {
		errs = append(errs, p.DeleteRun(ctx, name, run))
	} else {
		errs = append(errs, p.Delete(ctx, name))
	}
	return errors.Join(errs...)
}

// endSwarm heals the lab's partitioned nodes, removes the services of the
// lab's swarm (labelled with the lab's name, and run if given), waits until
// their tasks are gone, then makes the nodes of that swarm leave it,
// workers first. A node whose swarm is not the lab's is left alone; no
// manager of the lab's swarm answering means there is nothing to end.
func endSwarm(ctx context.Context, c provider.Cluster, name, run string) error {
	var errs []error
	nodes := c.Nodes()
	for _, n := range nodes {
		if n.Partitioned() {
			errs = append(errs, n.Apply(ctx, provider.Heal))
		}
	}
	var mgr *client.Client
	for _, n := range nodes {
		if n.Role() != topology.RoleManager {
			continue
		}
		e, err := n.Engine(ctx)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, common.PingTimeout)
		sw, err := e.SwarmInspect(cctx, client.SwarmInspectOptions{})
		cancel()
		if err != nil {
			continue
		}
		labels := sw.Swarm.Spec.Labels
		if labels[common.LabelLab] == name && (run == "" || labels[common.LabelRun] == run) {
			mgr = e
			break
		}
	}
	if mgr == nil {
		return errors.Join(errs...) // no swarm of this lab (or run) answers: nothing to leave
	}
	members := map[string]bool{}
	list, err := mgr.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing the lab's swarm nodes: %w", err))...)
	}
	for _, n := range list.Items {
		members[n.ID] = true
	}
	services, err := mgr.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing the lab's services: %w", err))...)
	}
	for _, s := range services.Items {
		if _, err := mgr.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing service %s: %w", s.Spec.Name, err))
		}
	}
	// Nodes of the lab's swarm, by role.
	type member struct {
		name, host string
		engine     *client.Client
	}
	var workers, managers []member
	for _, n := range nodes {
		e, err := n.Engine(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		info, err := e.Info(ctx, client.InfoOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s (%s): the engine does not answer, so it stays in the lab's swarm; start it and run down again: %w", n.Name(), n.DockerHost(), err))
			continue
		}
		if !members[info.Info.Swarm.NodeID] {
			continue
		}
		if info.Info.Swarm.ControlAvailable {
			managers = append(managers, member{n.Name(), n.DockerHost(), e})
		} else {
			workers = append(workers, member{n.Name(), n.DockerHost(), e})
		}
	}
	all := append(append([]member(nil), workers...), managers...)
	_, err = wait.For(ctx, "the lab's task containers to be removed", TasksGoneTimeout, 500*time.Millisecond,
		func(ctx context.Context) wait.Result {
			var left []string
			for _, m := range all {
				cs, err := m.engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "com.docker.swarm.task.id")})
				if err != nil {
					return wait.Continue("%s: %v", m.name, err)
				}
				if len(cs.Items) > 0 {
					left = append(left, fmt.Sprintf("%s: %d", m.name, len(cs.Items)))
				}
			}
			if len(left) > 0 {
				return wait.Continue("task containers left: %s", strings.Join(left, ", "))
			}
			return wait.Done("none left")
		})
	errs = append(errs, err)
	for _, m := range all {
		if _, err := m.engine.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("node %s (%s): leaving the lab's swarm: %w", m.name, m.host, err))
		}
	}
	return errors.Join(errs...)
}
