package ssh

import (
	"context"

	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// The fault verbs are shell scripts run over SSH. They work on hosts with
// systemd (docker.service) and on hosts without it, where dockerd runs in
// the background logging to /var/log/docker.log (as in the lab's sshnode
// image), as root or through passwordless sudo.

// asRoot prefixes a script with $SUDO, empty for root.
const asRoot = common.AsRoot

// killScript stops the engine at once (SIGKILL): the node is lost to the
// swarm as if the machine had died. With systemd the socket unit is stopped
// too, or the next connection to the socket would start the engine again.
const killScript = asRoot + `
if [ -d /run/systemd/system ]; then
  $SUDO systemctl stop docker.socket 2>/dev/null || true
  $SUDO systemctl kill --signal=KILL docker.service
else
  $SUDO pkill -KILL -x dockerd || true
fi
for i in $(seq 1 100); do pgrep -x dockerd >/dev/null || exit 0; sleep 0.1; done
echo "dockerd still runs 10s after SIGKILL" >&2; exit 1
`

// stopScript stops the engine cleanly: its containers stop with it.
const stopScript = asRoot + `
if [ -d /run/systemd/system ]; then
  $SUDO systemctl stop docker.socket docker.service
else
  $SUDO pkill -TERM -x dockerd || true
fi
for i in $(seq 1 300); do pgrep -x dockerd >/dev/null || exit 0; sleep 0.1; done
echo "dockerd still runs 30s after stop" >&2; exit 1
`

// startScript starts the engine unless it runs.
const startScript = asRoot + `
pgrep -x dockerd >/dev/null && exit 0
if [ -d /run/systemd/system ]; then
  $SUDO systemctl start docker.service
else
  $SUDO rm -f /var/run/docker.pid
  $SUDO setsid -f dockerd >>/var/log/docker.log 2>&1 </dev/null
fi
`

// logsScript prints the engine's recent log.
const logsScript = asRoot + `
if [ -d /run/systemd/system ]; then
  $SUDO journalctl -u docker.service --no-pager -n 5000
elif [ -r /var/log/docker.log ] || [ -n "$SUDO" ]; then
  $SUDO tail -n 5000 /var/log/docker.log
else
  echo "no engine log found (no systemd journal, no /var/log/docker.log)" >&2; exit 1
fi
`

// Swarm's ports: cluster management, node gossip, overlay data.
const (
	swarmTCPPorts = "2377,7946"
	swarmUDPPorts = "7946,4789"
)

// healScript removes the partition rules (common.HealScript).
const healScript = common.HealScript

// partitionScript drops the swarm ports between the host and each of peers,
// both ways; SSH and everything else keep working, so the lab still drives
// the host and its engine.
func partitionScript(peers []string) string {
	return common.PartitionScript(common.Cut{
		Hooks: []string{"INPUT", "OUTPUT"}, Peers: peers,
		TCPPorts: swarmTCPPorts, UDPPorts: swarmUDPPorts,
	})
}

// partitionedScript exits 0 when the host is partitioned.
const partitionedScript = common.PartitionedScript

// partitioned tells whether the host's partition rules are in place.
func (h *host) partitioned(ctx context.Context) bool {
	r, err := h.run(ctx, partitionedScript, nil)
	return err == nil && r.ExitCode == 0
}
