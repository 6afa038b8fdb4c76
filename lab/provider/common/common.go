// Package common holds what every provider shares, written once: the
// labels on what a lab makes, the engine timeouts, the result of a command
// run on a node, the partition and heal scripts, and the decision between
// --privileged and a capability set for a nested engine.
//
// It depends on no provider and on nothing of the lab above them, so that
// any provider (and test fixture) may use it.
package common

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/wait"
)

// Every container, network and volume a lab creates, and the swarm it
// forms, carries these labels. Every listing and every cleanup goes through
// them, never through names.
const (
	LabelLab       = "io.swarmlab.lab"       // lab name
	LabelRun       = "io.swarmlab.run"       // id of the bring-up that made it
	LabelComponent = "io.swarmlab.component" // node | registry | dockerio | network | volume
	LabelNode      = "io.swarmlab.node"      // node name (nodes and their volumes)
	LabelRole      = "io.swarmlab.role"      // manager | worker
	LabelIndex     = "io.swarmlab.index"     // position of the node in the topology
	LabelAddr      = "io.swarmlab.addr"      // node address on the lab network
	LabelTopology  = "io.swarmlab.topology"  // topology file the lab came from
	// LabelCache marks the registry blob cache, which outlives labs on
	// purpose (like the image cache) so that images are pushed once.
	LabelCache = "io.swarmlab.cache"
	// LabelUpstream, on a lab's pull-through cache of docker.io, is the
	// registry it caches.
	LabelUpstream = "io.swarmlab.upstream"
	// LabelIngress, on the swarm, records the ingress mode the lab chose.
	LabelIngress = "io.swarmlab.ingress"
	// LabelURLPrefix prefixes service labels that name a URL of the
	// service: io.swarmlab.url.vote: "http://{addr}/".
	LabelURLPrefix = "io.swarmlab.url."
)

// Values of LabelComponent.
const (
	ComponentNode     = "node"
	ComponentRegistry = "registry"
	// ComponentDockerIO is a lab's pull-through cache of docker.io.
	ComponentDockerIO = "dockerio"
	ComponentNetwork  = "network"
	ComponentVolume   = "volume"
)

// RegistryName is the name of a lab's registry container (on the host
// engine for docker, on each host for ssh).
func RegistryName(lab string) string { return "swarmlab-" + lab + "-registry" }

// Timeouts.
const (
	// EngineTimeout bounds how long a node's engine may take to answer
	// after its machine starts (measured: ~2 s idle, more under load).
	EngineTimeout = 90 * time.Second
	// PingTimeout bounds one look at whether an engine answers.
	PingTimeout = 10 * time.Second
)

// WaitHTTP waits until url answers 200, looking every poll, for at most
// EngineTimeout, reporting what it last got.
func WaitHTTP(ctx context.Context, what, url string, poll time.Duration) error {
	_, err := wait.For(ctx, what+" to answer at "+url, EngineTimeout, poll, wait.HTTPOK(url))
	return err
}

// ExecResult is the outcome of a command run on a node (in its container,
// or on its host over SSH).
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// MustSucceed turns a non-zero exit into an error quoting stderr (stdout
// when stderr is empty).
func (r ExecResult) MustSucceed(what string) error {
	if r.ExitCode == 0 {
		return nil
	}
	msg := strings.TrimSpace(r.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(r.Stdout)
	}
	return fmt.Errorf("%s: exit code %d: %s", what, r.ExitCode, msg)
}

// SecurityEnv names the variable that forces how a nested engine is run:
// "privileged" or "caps".
const SecurityEnv = "SWARMLAB_NODE_SECURITY"

// LabFilter selects what carries lab's label, on any engine.
func LabFilter(lab string) client.Filters {
	return make(client.Filters).Add("label", LabelLab+"="+lab)
}

// PreferPrivileged says whether to run a nested engine with --privileged.
// SecurityEnv decides if set. Otherwise cgroup v2 hosts (Docker Desktop,
// recent distributions) get --privileged, the usual way to nest dockerd
// there; cgroup v1 hosts get the capability set measured to work where
// --privileged fails. cgroupVersion reads the host engine's cgroup version
// ("" if it cannot say); it is called only when SecurityEnv is not set.
func PreferPrivileged(cgroupVersion func() string) bool {
	switch os.Getenv(SecurityEnv) {
	case "privileged":
		return true
	case "caps":
		return false
	}
	return cgroupVersion() == "2"
}

// NodeHostConfig is what a nested dockerd needs: full capabilities (or
// --privileged), no seccomp/apparmor confinement, writable cgroups, every
// device, tmpfs /run (a stale pid file there would stop a restarted node's
// dockerd from starting) and a volume for /var/lib/docker (overlay2 does not
// work on overlay2).
func NodeHostConfig(hc *container.HostConfig, privileged bool, volume string) {
	hc.Privileged = privileged
	if !privileged {
		hc.CapAdd = []string{"ALL"}
		hc.CapDrop = []string{"SYS_RESOURCE"}
		hc.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
		// systempaths=unconfined, which the docker CLI sends as empty lists.
		hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
		hc.DeviceCgroupRules = []string{"a *:* rwm"}
	}
	if privileged {
		hc.CgroupnsMode = container.CgroupnsModePrivate
	} else {
		hc.Binds = append(hc.Binds, "/sys/fs/cgroup:/sys/fs/cgroup:rw")
	}
	hc.Tmpfs = map[string]string{"/run": "", "/var/run": ""}
	hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: volume, Target: "/var/lib/docker"})
}
