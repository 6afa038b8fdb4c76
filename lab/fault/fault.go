// Package fault breaks things below the node level. Node faults (kill, stop,
// pause, partition) are the provider's (lab.Do); here, a task's process dies
// on its node as a crash would, and the swarm must notice it by itself.
package fault

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
)

// KillTask sends SIGKILL to the container of task, on the node that runs it,
// through that node's own docker CLI: nothing in the swarm is told, as when
// a process crashes. It returns the node's name.
func KillTask(ctx context.Context, l *lab.Lab, mgr client.APIClient, task swarm.Task) (string, error) {
	cs := task.Status.ContainerStatus
	if cs == nil || cs.ContainerID == "" {
		return "", fmt.Errorf("task %s is %s and has no container yet; kill a running task", task.ID, task.Status.State)
	}
	n, err := mgr.NodeInspect(ctx, task.NodeID, client.NodeInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("finding the node of task %s: %w", task.ID, err)
	}
	node := n.Node.Description.Hostname
	ln, err := l.Node(node)
	if err != nil {
		return node, err
	}
	if _, err := ln.Exec(ctx, "docker", "kill", "--signal", "KILL", cs.ContainerID); err != nil {
		return node, fmt.Errorf("killing container %.12s of task %s on node %s: %w", cs.ContainerID, task.ID, node, err)
	}
	return node, nil
}
