package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmlab/swarmlab/lab/provider"
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

const forwardFile = "forward.json"

// forwardPoll is how often the forwarder looks for new targets (a stack
// deployed later publishes new ports) and whether the lab still exists.
const forwardPoll = 2 * time.Second

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

// Forward serves the lab's targets until ctx ends or the lab is gone: its
// node engines, its registry, and every port its services publish, looked
// for again every forwardPoll. logf reports what it starts serving.
func Forward(ctx context.Context, name string, logf func(string, ...any)) error {
	if _, pid := readForwards(name); pid != 0 && pid != os.Getpid() {
		return fmt.Errorf("lab %s is already forwarded by process %d", name, pid)
	}
	l, err := Open(ctx, name)
	if err != nil {
		return err
	}
	defer l.Close()
	r, ok := l.cluster.(provider.Relayed)
	if !ok || r.Forwards() == nil {
		return fmt.Errorf("lab %s is reached directly: there is nothing to forward", name)
	}
	file := filepath.Join(StateDir(name), forwardFile)
	defer os.Remove(file)
	var served map[string]string
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
			for _, n := range l.cluster.Nodes() {
				n.DockerHost()
			}
			l.cluster.Registry()
			l.Endpoints(ctx) // each published port gets its listener
			if now := r.Forwards(); !maps.Equal(now, served) {
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
				served = now
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
