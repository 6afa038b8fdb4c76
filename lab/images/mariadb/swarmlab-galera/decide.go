package main

import (
	"fmt"
	"sort"
	"strings"
)

// Member is what a member of the cluster says of itself on its status port (status.go), and
// what this one knows of itself.
type Member struct {
	Name string `json:"name"` // wsrep_node_name
	Addr string `json:"addr"` // where the others reach it
	Role string `json:"role"` // roleDB or roleArbitrator
	// Phase is phaseWaiting while the server does not run (its position is its data's), then
	// phaseRunning.
	Phase string `json:"phase"`
	// UUID and Seqno are the position of its data in the cluster's history (grastate.go): UUID
	// empty for a member with no data, Seqno -1 when unknown.
	UUID            string `json:"uuid,omitempty"`
	Seqno           int64  `json:"seqno"`
	SafeToBootstrap bool   `json:"safe_to_bootstrap"`
	// Cluster is a running server's wsrep_cluster_status ("Primary", "non-Primary",
	// "Disconnected"), State its wsrep_local_state_comment ("Synced", "Donor/Desynced", ...).
	Cluster string `json:"cluster,omitempty"`
	State   string `json:"state,omitempty"`
}

const (
	roleDB         = "db"
	roleArbitrator = "garbd"
	phaseWaiting   = "waiting"
	phaseRunning   = "running"
)

// Action is what a member about to start its server does.
type Action int

const (
	Wait      Action = iota // ask the peers again in a moment
	Join                    // start mariadbd and join the cluster (state transfer from a peer)
	Bootstrap               // start mariadbd with --wsrep-new-cluster: a new primary component
	Fail                    // refuse to start: a human must look
)

func (a Action) String() string {
	return [...]string{"wait", "join", "bootstrap", "fail"}[a]
}

// Decision is an Action and why.
type Decision struct {
	Action Action
	Reason string
}

// decide is how a database member chooses between joining, bootstrapping and waiting, from what
// it knows of itself (self) and what its peers answered (the arbitrator's and the database
// members' status; a peer that does not answer is not there). size is the number of database
// members of the cluster (GALERA_SIZE), bootstrapNode the name of the member designated to start
// a new cluster (GALERA_BOOTSTRAP_NODE; may be empty).
//
// The rules, in order:
//  1. Rejoin: a database peer runs in the primary component: join it. Galera sends this member
//     what it lacks: the missing write sets from the peer's gcache (IST) when its position is
//     still there, else the whole data directory (SST, rsync).
//  2. New cluster: no member has data. The designated member bootstraps (without waiting for
//     the others: there is nothing to lose); with none designated, the member of the lowest name
//     does, once all size members answer.
//  3. Recovery: no primary component runs and some member has data (every database member was
//     down). The cluster must go on from the member with the most advanced position, or
//     transactions would be lost: the one whose grastate.dat says safe_to_bootstrap: 1 (the
//     last to leave cleanly) bootstraps at once; else, once all size members have said their
//     seqno, the highest seqno bootstraps (ties: the designated member, then the lowest name), and
//     the others wait for it to run, then join (rule 1). While a member's position is unknown
//     (seqno -1: --wsrep-recover failed), nobody bootstraps but by safe_to_bootstrap (a human's
//     choice, then).
//
// Members whose data belong to different clusters (uuids) make it Fail: bootstrapping from one
// would throw the other's away.
func decide(self Member, peers []Member, size int, bootstrapNode string) Decision {
	for _, p := range peers {
		if p.Role == roleDB && p.Phase == phaseRunning && p.Cluster == "Primary" {
			return Decision{Join, fmt.Sprintf("%s (%s) runs in the primary component (%s)", p.Name, p.Addr, p.State)}
		}
	}
	known := []Member{self}
	for _, p := range peers {
		if p.Role == roleDB && p.Phase == phaseWaiting {
			known = append(known, p)
		}
	}
	all := len(known) >= size
	count := fmt.Sprintf("%d of %d database members have said their state (%s)", len(known), size, names(known))

	var withData []Member
	for _, m := range known {
		if m.UUID != "" {
			withData = append(withData, m)
		}
	}
	// 2. A new cluster.
	if len(withData) == 0 {
		switch {
		case bootstrapNode != "" && self.Name == bootstrapNode:
			return Decision{Bootstrap, "new cluster: no member has data, no primary component runs, and this member is the designated bootstrapper (GALERA_BOOTSTRAP_NODE)"}
		case bootstrapNode != "":
			return Decision{Wait, fmt.Sprintf("new cluster: waiting for %s (GALERA_BOOTSTRAP_NODE) to start it", bootstrapNode)}
		case !all:
			return Decision{Wait, "new cluster: " + count + "; the lowest name bootstraps once all have"}
		case lowest(known).Name == self.Name:
			return Decision{Bootstrap, "new cluster: no member has data and this member has the lowest name; " + count}
		default:
			return Decision{Wait, fmt.Sprintf("new cluster: waiting for %s (the lowest name) to start it", lowest(known).Name)}
		}
	}

	// 3. Recovery from the most advanced member.
	for _, m := range withData {
		if m.UUID != withData[0].UUID {
			return Decision{Fail, fmt.Sprintf("members hold the data of different clusters (%s has %s, %s has %s): bootstrapping from one would discard the other's; "+
				"remove the data volume of the wrong one so that it joins by state transfer", withData[0].Name, withData[0].UUID, m.Name, m.UUID)}
		}
	}
	if self.SafeToBootstrap && self.UUID != "" {
		return Decision{Bootstrap, fmt.Sprintf("recovery: this member was the last to leave the cluster (safe_to_bootstrap: 1, seqno %d)", self.Seqno)}
	}
	for _, m := range withData {
		if m.SafeToBootstrap {
			return Decision{Wait, fmt.Sprintf("recovery: waiting for %s, the last to leave the cluster (safe_to_bootstrap: 1), to bootstrap it", m.Name)}
		}
	}
	if !all {
		return Decision{Wait, "recovery: " + count + "; the most advanced bootstraps once all have"}
	}
	for _, m := range withData {
		if m.Seqno < 0 {
			return Decision{Wait, fmt.Sprintf("recovery: the position of %s's data is unknown (--wsrep-recover failed; %s): it may be the most advanced, so no member bootstraps; "+
				"set safe_to_bootstrap: 1 in the grastate.dat of the one to go on from", m.Name, seqnos(known))}
		}
	}
	best := mostAdvanced(withData, bootstrapNode)
	if best.Name == self.Name && best.Addr == self.Addr {
		return Decision{Bootstrap, fmt.Sprintf("recovery: this member has the most advanced position (seqno %d; %s)", self.Seqno, seqnos(known))}
	}
	return Decision{Wait, fmt.Sprintf("recovery: waiting for %s, the most advanced (seqno %d; %s), to bootstrap", best.Name, best.Seqno, seqnos(known))}
}

// mostAdvanced is the member of the highest seqno; of equal ones, the designated member, then
// the lowest name (so that every member picks the same one).
func mostAdvanced(ms []Member, bootstrapNode string) Member {
	sorted := append([]Member(nil), ms...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Seqno != b.Seqno {
			return a.Seqno > b.Seqno
		}
		if (a.Name == bootstrapNode) != (b.Name == bootstrapNode) {
			return a.Name == bootstrapNode
		}
		return less(a, b)
	})
	return sorted[0]
}

func lowest(ms []Member) Member {
	best := ms[0]
	for _, m := range ms[1:] {
		if less(m, best) {
			best = m
		}
	}
	return best
}

func less(a, b Member) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Addr < b.Addr
}

func names(ms []Member) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func seqnos(ms []Member) string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s: %d", m.Name, m.Seqno))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
