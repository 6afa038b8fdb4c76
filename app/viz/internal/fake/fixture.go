package fake

import (
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Secret values the fixture's services carry in their specs; a test checks
// none reaches the visualizer's output.
const (
	SecretEnv    = "hunter2-db-password"
	SecretName   = "postgres_password_secret"
	ConfigName   = "haproxy_cfg_config"
	ServiceLabel = "com.example.internal-note"
)

// Since is the fixture tasks' state timestamp.
var Since = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Swarm3 is a three-node swarm: m1 the leader, w1 ready, w2 down and
// drained; service web (3 replicas, nginx) and db (1 replica, with an
// environment, a secret and a config), and tasks in several states.
func Swarm3() ([]swarm.Node, []swarm.Service, []swarm.Task) {
	node := func(id, host string, role swarm.NodeRole, state swarm.NodeState, avail swarm.NodeAvailability, labels map[string]string) swarm.Node {
		n := swarm.Node{ID: id}
		n.Description.Hostname = host
		n.Spec.Role, n.Spec.Availability, n.Spec.Labels = role, avail, labels
		n.Status.State, n.Status.Addr = state, "10.99.0."+id[len(id)-1:]
		return n
	}
	m1 := node("node-1", "m1", swarm.NodeRoleManager, swarm.NodeStateReady, swarm.NodeAvailabilityActive, map[string]string{"role": "manager"})
	m1.ManagerStatus = &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable}
	nodes := []swarm.Node{
		node("node-3", "w2", swarm.NodeRoleWorker, swarm.NodeStateDown, swarm.NodeAvailabilityDrain, map[string]string{"role": "worker"}),
		node("node-2", "w1", swarm.NodeRoleWorker, swarm.NodeStateReady, swarm.NodeAvailabilityActive, map[string]string{"role": "worker", "zone": "b"}),
		m1,
	}
	web := swarm.Service{ID: "svc-web"}
	web.Spec.Name = "shop_web"
	web.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "nginx:latest@sha256:0123", Env: []string{"MODE=prod"}}
	db := swarm.Service{ID: "svc-db"}
	db.Spec.Name = "shop_db"
	db.Spec.Labels = map[string]string{ServiceLabel: "do not show"}
	db.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{
		Image:   "registry:5000/swarmlab/postgres:15@sha256:4567",
		Env:     []string{"POSTGRES_PASSWORD=" + SecretEnv},
		Args:    []string{"--password", SecretEnv},
		Secrets: []*swarm.SecretReference{{SecretName: SecretName, SecretID: "sec-1", File: &swarm.SecretReferenceFileTarget{Name: "/run/secrets/" + SecretName}}},
		Configs: []*swarm.ConfigReference{{ConfigName: ConfigName, ConfigID: "cfg-1"}},
	}
	task := func(id string, svc swarm.Service, slot int, node string, desired, state swarm.TaskState) swarm.Task {
		t := swarm.Task{ID: id, ServiceID: svc.ID, Slot: slot, NodeID: node, DesiredState: desired}
		t.Spec = svc.Spec.TaskTemplate
		t.Status.State, t.Status.Timestamp, t.Status.Message = state, Since, "started"
		return t
	}
	tasks := []swarm.Task{
		task("t-web-2", web, 2, "node-2", swarm.TaskStateRunning, swarm.TaskStateRunning),
		task("t-web-1", web, 1, "node-1", swarm.TaskStateRunning, swarm.TaskStateRunning),
		task("t-web-3", web, 3, "node-2", swarm.TaskStateRunning, swarm.TaskStateStarting),
		// The task the down node ran: the swarm has replaced it (t-web-3).
		task("t-web-3-old", web, 3, "node-3", swarm.TaskStateShutdown, swarm.TaskStateRunning),
		task("t-db-1", db, 1, "node-1", swarm.TaskStateRunning, swarm.TaskStateRunning),
		// No node fits yet.
		task("t-db-2", db, 2, "", swarm.TaskStateRunning, swarm.TaskStatePending),
	}
	tasks[5].Status.Err = "no suitable node"
	return nodes, []swarm.Service{web, db}, tasks
}
