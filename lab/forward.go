package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// A lab on an engine that is not this machine's (Docker Desktop, tcp://,
// ssh://, a CI sidecar) is reached through its relay, behind listeners on
// 127.0.0.1 (lab/provider/docker/access.go). A process's listeners end with
// it; for the URLs `up` prints, the DOCKER_HOST `env` prints and the docker
// context to keep working after the command, a forwarder process serves
// them for as long as the lab lives: `swarmlab forward NAME`, started by
// `swarmlab up`, stopped by `down`, and gone by itself once the lab is.
// It writes what it serves to forwardFile in the lab's state directory;
// Open hands that to the provider, so every later command uses the same
// addresses.
//
// A lab reached directly (provider.Bridged: a docker lab on this Linux
// host) needs none of that to be driven, but the URLs of what it publishes
// would be its nodes' bridge addresses (http://10.99.0.10:8080/), which
// only this machine routes. People are given those ports on 127.0.0.1
// instead, as kind's extraPortMappings and k3d's load balancer do, so the
// same URL works here and where the lab is relayed: the same forwarder
// serves them, dialling the bridge address itself (UserEndpoints reads
// what it serves). Its node engines and registry are on 127.0.0.1 already,
// published by the engine. What the lab's own code dials (Endpoints,
// PublishedAddr: probes, tests) stays the bridge address: one hop fewer.

const forwardFile = "forward.json"

// forwardPoll is how often the forwarder looks for new targets (a stack
// deployed later publishes new ports) and whether the lab still exists.
const forwardPoll = 2 * time.Second

// forwardDial bounds the forwarder's dial of a bridged lab's port.
const forwardDial = 10 * time.Second

// forwardCatchUp bounds how long UserEndpoints waits for a running
// forwarder to serve a port it does not serve yet (one published since its
// last look), checking every forwardCatchUpPoll.
const (
	forwardCatchUp     = 3 * forwardPoll
	forwardCatchUpPoll = 250 * time.Millisecond
)

type forwardState struct {
	PID      int               `json:"pid"`
	Forwards map[string]string `json:"forwards"`
}

// Relayed reports whether the lab is reached through a relay, so that
// what this process serves for it ends with the process.
func (l *Lab) Relayed() bool {
	r, ok := l.cluster.(provider.Relayed)
	return ok && r.Forwards() != nil
}

// bridged reports whether people are given the lab's published ports on
// 127.0.0.1 by its forwarder, though this process reaches them directly.
func (l *Lab) bridged() bool {
	b, ok := l.cluster.(provider.Bridged)
	return ok && b.Bridged()
}

// Forwarded reports whether the lab wants a forwarder process (Forward):
// it is relayed, or bridged.
func (l *Lab) Forwarded() bool { return l.Relayed() || l.bridged() }

// Reattach opens the lab's machines again through its provider, so that
// the handle uses what a forwarder now serves (Forward) instead of this
// process's own listeners; what the handle knew of its bring-up stays.
func (l *Lab) Reattach(ctx context.Context) error {
	rec, err := readRecord(l.name)
	if err != nil {
		return err
	}
	if rec == nil {
		return fmt.Errorf("lab %s has no record to open it again by", l.name)
	}
	r := *rec
	r.Forwards, _ = readForwards(l.name)
	c, err := l.prov.Open(ctx, r)
	if err != nil {
		return err
	}
	l.closeCluster()
	l.cluster = c
	return nil
}

// readForwards returns what a live forwarder of the lab serves, and its pid;
// nil when none runs.
func readForwards(name string) (map[string]string, int) {
	b, err := os.ReadFile(filepath.Join(StateDir(name), forwardFile))
	if err != nil {
		return nil, 0
	}
	var st forwardState
	if json.Unmarshal(b, &st) != nil || !alive(st.PID) {
		return nil, 0
	}
	return st.Forwards, st.PID
}

// Forward serves the lab's targets until ctx ends or the lab is gone,
// looked for again every forwardPoll: for a relayed lab its node engines,
// its registry, and every port its services publish, through the relay;
// for a bridged lab the ports its services publish, dialled directly.
// Each target keeps its address on 127.0.0.1 for as long as Forward runs.
// logf reports what it starts serving.
func Forward(ctx context.Context, name string, logf func(string, ...any)) error {
	return ForwardWith(ctx, name, Options{}, logf)
}

// ForwardWith is Forward, opening the lab through opts (see OpenWith).
func ForwardWith(ctx context.Context, name string, opts Options, logf func(string, ...any)) error {
	if _, pid := readForwards(name); pid != 0 && pid != os.Getpid() {
		return fmt.Errorf("lab %s is already forwarded by process %d", name, pid)
	}
	l, err := OpenWith(ctx, name, opts)
	if err != nil {
		return err
	}
	defer l.Close()
	var (
		forwards func() map[string]string
		serve    func(ctx context.Context)
	)
	switch {
	case l.Relayed():
		r := l.cluster.(provider.Relayed)
		forwards = r.Forwards
		serve = func(ctx context.Context) {
			for _, n := range l.cluster.Nodes() {
				n.DockerHost()
			}
			l.cluster.Registry()
			l.Endpoints(ctx) // each published port gets its listener
		}
	case l.bridged():
		loop := common.NewLoopback("the forwarder of lab "+name, forwardDial, func(ctx context.Context, target string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", target)
		})
		defer loop.Close()
		forwards = loop.Forwards
		serve = func(ctx context.Context) {
			l.endpoints(ctx, func(node string, port uint16) (string, error) {
				target, err := l.cluster.PublishedAddr(node, port)
				if err != nil {
					return "", err
				}
				return loop.Addr(target)
			})
		}
	default:
		return fmt.Errorf("lab %s is reached directly and publishes on addresses anyone reaches: there is nothing to forward", name)
	}
	file := filepath.Join(StateDir(name), forwardFile)
	defer os.Remove(file)
	var served map[string]string
	written := false
	for {
		if err := l.Refresh(ctx); err != nil {
			if errors.Is(err, provider.ErrNotFound) {
				logf("lab %s is gone: stopping", name)
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			logf("refreshing lab %s: %v", name, err)
		} else {
			serve(ctx)
			// Written once even when there is nothing to serve yet (a
			// bridged lab that publishes nothing): that is how up knows
			// the forwarder runs.
			if now := forwards(); !written || !maps.Equal(now, served) {
				for t, a := range now {
					if served[t] != a {
						logf("serving %s on %s", t, a)
					}
				}
				b, _ := json.MarshalIndent(forwardState{PID: os.Getpid(), Forwards: now}, "", "  ")
				tmp := file + ".tmp"
				if err := os.WriteFile(tmp, b, 0o600); err != nil {
					return err
				}
				if err := os.Rename(tmp, file); err != nil {
					return err
				}
				served, written = now, true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(forwardPoll):
		}
	}
}

// stopForwarder ends the lab's forwarder, if one runs, and waits briefly
// for it to go.
func stopForwarder(name string) {
	_, pid := readForwards(name)
	if pid == 0 || pid == os.Getpid() {
		return
	}
	terminate(pid)
	for i := 0; i < 40 && alive(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// Forwarder returns the pid of the lab's running forwarder, if one serves
// it.
func Forwarder(name string) (int, bool) {
	_, pid := readForwards(name)
	return pid, pid != 0
}
