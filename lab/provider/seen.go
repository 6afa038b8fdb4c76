package provider

import "sync"

// Seen is what a provider last saw of a node's machine, for its Node handle
// to embed: it gives the handle State and Partitioned, safe to call while
// the cluster refreshes.
type Seen struct {
	mu          sync.Mutex
	state       State
	partitioned bool
}

// State implements Node.
func (s *Seen) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Partitioned implements Node.
func (s *Seen) Partitioned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.partitioned
}

// See records a new read.
func (s *Seen) See(state State, partitioned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.partitioned = state, partitioned
}

// Handles lists a provider's own node values as Nodes.
func Handles[N Node](nodes []N) []Node {
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		out[i] = n
	}
	return out
}
