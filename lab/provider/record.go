package provider

import (
	"time"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// Record is what a lab keeps of itself, written at up, and all a provider
// is given to open the lab again (Provider.Open): the lab keeps it on disk
// (lab.StateDir), the provider reads only what it needs of it.
type Record struct {
	Name string
	// Provider is the topology's provider type ("docker", "ssh").
	Provider string
	// RunID is the bring-up that made the lab; empty when unknown (a
	// docker lab made before records, whose run its labels say).
	RunID string
	// Topology is the topology the lab was made from, under the lab's
	// name, defaulted. It is nil only in the minimal record the lab makes
	// for a docker lab made before records, which its provider finds by
	// its labels.
	Topology *topology.Topology
	// Access is how this machine reaches the lab.
	Access Access
	// Forwards are the local addresses a running forwarder process (see
	// Relayed) serves for targets of the lab, to use rather than new
	// listeners of this process. Not written to disk with the record.
	Forwards map[string]string `json:"-"`
	// Created is when the lab was recorded, at the start of its bring-up;
	// zero when unknown (a docker lab made before records).
	Created time.Time
}

// Relayed is a Cluster reached through a relay: Forwards lists the local
// "127.0.0.1:port" this process listens on for each target of the lab
// ("127.0.0.1:32835" on the engine host, "10.99.0.10:80"). Empty when the
// lab is reached directly.
type Relayed interface {
	Forwards() map[string]string
}

// Bridged is a Cluster whose published ports this machine reaches directly,
// at its nodes' addresses on a network that only this machine routes (a
// docker lab's bridge on this Linux host): PublishedAddr gives those, for
// what runs here (the lab's own probes, tests). People are given the same
// ports on 127.0.0.1 instead, served by the lab's forwarder process
// (lab.Forward): the URL that also works where the lab is relayed, and in a
// browser that does not route the bridge. Bridged reports false where the
// lab is relayed after all.
type Bridged interface {
	Bridged() bool
}

// Access is what a provider needs, besides the topology, to open the lab
// again: the engine of this machine through which it made the lab (docker:
// the engine its nodes are containers of; ssh: the engine that holds the
// lab's images). Empty: the default socket.
type Access struct {
	Engine string `json:"engine,omitempty"`
}
