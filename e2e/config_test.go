//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// What a run is told through the environment.
const (
	// envTopology names the topology to bring up: a file in topologies/
	// ("swarm-ha") or a path to a topology file.
	envTopology     = "SWARMLAB_TOPOLOGY"
	defaultTopology = "swarm-3"
	// envEngine ("26" or "20.10") overrides the Docker engine the
	// topology's nodes run (provider.engine), for this run: scripts/test
	// runs one topology on 20.10 so. It is topology.EngineEnv, applied by
	// topology.LoadFile; an ssh topology ignores it, with a warning.
	envEngine = topology.EngineEnv
	// envKeep = 1 leaves the lab up after the run, for inspection.
	envKeep = "SWARMLAB_KEEP"
	// envReportDir is where the JUnit and JSON reports go (default
	// .cache/e2e/<topology>/ at the module root), one directory per run.
	envReportDir = "SWARMLAB_REPORT_DIR"
)

// The e2e stack (testdata/edge/stack.yml). Its HAProxy configuration names
// tasks.e2e_echo, so the stack name is fixed.
const (
	stackName    = "e2e"
	stackFile    = "testdata/edge/stack.yml"
	echoService  = stackName + "_echo"
	edgeService  = stackName + "_edge"
	echoReplicas = 3    // as the stack file deploys it
	edgePort     = 8088 // published in host mode on the edge's node
	edgeStats    = 8488 // HAProxy's stats page, CSV at /stats;csv
	edgeBackend  = "echo"
	echoImageRep = "swarmlab/echo" // the repository x-swarmlab builds echo into
)

// Timeouts, tuned to the lab's 1 s dispatcher heartbeat as measured on a
// 2-core machine: a killed node is Down ~2.5–3.5 s after the kill and its
// tasks run elsewhere ~1.5 s later (the e2e stack restarts them at once); a
// restarted node is Ready ~3.5 s after its engine answers; raft elects a new
// leader after 10 ticks of 1 s. Each bound
// leaves several times the measure for a loaded machine: how long things took
// goes into the report, never into an assertion.
const (
	bringUpTimeout    = 8 * time.Minute  // Up, its stacks, and the e2e stack
	nodeDownTimeout   = 45 * time.Second // kill or partition → Down
	nodeReadyTimeout  = 90 * time.Second // start or heal → Ready
	rescheduleTimeout = 2 * time.Minute  // fault → N/N running elsewhere
	convergeTimeout   = 2 * time.Minute  // a service runs all its tasks
	updateTimeout     = 3 * time.Minute  // a rolling update or rollback ends
	leaderTimeout     = 90 * time.Second // a leader is elected, or management is refused
	edgeTimeout       = 60 * time.Second // the edge answers from every running task
	// After a partition heals, the overlay's gossip takes the healed node
	// back only on its own retry: until then the edge's DNS lacks the new
	// tasks placed there (seen: 31 s on docker, 66-80 s over ssh).
	healedEdgeTimeout = 2 * time.Minute
	specTimeout       = 8 * time.Minute
	cleanupTimeout    = 4 * time.Minute
	// poll is how often a wait looks again: each look is an API call or
	// two to a manager, or a dozen requests through the edge, so 100ms
	// costs little and a wait ends within 100ms of what it waits for.
	poll = 100 * time.Millisecond
	// requestTimeout: a request slower than this is a failed one, as its
	// user would count it. The edge (testdata/edge/haproxy.cfg) gives up
	// on a dead server after 500 ms (connect) or 1 s (response) and replays
	// the request on another, so a request that meets a dying task still
	// answers well within it.
	requestTimeout = 2 * time.Second
)

// heartbeatScaled stretches a timeout tuned to a 1 s heartbeat for a
// topology with a slower one (detection takes a few heartbeats).
func heartbeatScaled(d time.Duration) time.Duration {
	hb := time.Second
	if sut != nil && sut.topo.Swarm.DispatcherHeartbeat.Duration > hb {
		return d * (sut.topo.Swarm.DispatcherHeartbeat.Duration / hb)
	}
	return d
}

// topologyPath resolves SWARMLAB_TOPOLOGY.
func topologyPath(root, v string) (string, error) {
	if v == "" {
		v = defaultTopology
	}
	if strings.ContainsRune(v, filepath.Separator) || strings.HasSuffix(v, ".yaml") || strings.HasSuffix(v, ".yml") {
		if _, err := os.Stat(v); err != nil {
			return "", fmt.Errorf("%s=%s: %w", envTopology, v, err)
		}
		return v, nil
	}
	p := filepath.Join(root, "topologies", v+".yaml")
	if _, err := os.Stat(p); err != nil {
		entries, _ := filepath.Glob(filepath.Join(root, "topologies", "*.yaml"))
		var names []string
		for _, e := range entries {
			names = append(names, strings.TrimSuffix(filepath.Base(e), ".yaml"))
		}
		return "", fmt.Errorf("%s=%s: no topologies/%s.yaml (shipped: %s); give a name from topologies/ or a path", envTopology, v, v, strings.Join(names, ", "))
	}
	return p, nil
}

func moduleRoot() string {
	root, err := images.ModuleRoot(".")
	if err != nil {
		panic(err)
	}
	return root
}

func keepLab() bool { return os.Getenv(envKeep) == "1" }

// engineFromEnv is the engine SWARMLAB_ENGINE asks for, or "".
func engineFromEnv() string { return os.Getenv(envEngine) }
