package common

import (
	"fmt"
	"strings"
)

// A partition is a chain of iptables rules on the node, PartitionChain,
// jumped to from the top of the chains that see the node's traffic; each
// jump carries the comment PartitionComment. Heal removes exactly those
// jumps and that chain, and nothing else, so it is safe on a host of the
// user's own. The scripts run as root, or through passwordless sudo.

// PartitionChain is the iptables chain that holds a partition's rules.
const PartitionChain = "SWARMLAB-PARTITION"

// PartitionComment marks the jumps to PartitionChain.
const PartitionComment = "swarmlab-partition"

// AsRoot begins a script whose commands are prefixed with $SUDO: empty for
// root, else "sudo -n".
const AsRoot = `SUDO=; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
`

// HealScript removes the partition: the jumps to PartitionChain (with the
// comment, or without it as labs made before it had one), then the chain.
// It succeeds on a node that is not partitioned.
const HealScript = AsRoot + `
for c in INPUT OUTPUT FORWARD; do
  while $SUDO iptables -D $c -m comment --comment ` + PartitionComment + ` -j ` + PartitionChain + ` 2>/dev/null; do :; done
  while $SUDO iptables -D $c -j ` + PartitionChain + ` 2>/dev/null; do :; done
done
$SUDO iptables -F ` + PartitionChain + ` 2>/dev/null || true
$SUDO iptables -X ` + PartitionChain + ` 2>/dev/null || true
`

// PartitionedScript exits 0 when the node is partitioned.
const PartitionedScript = AsRoot + `$SUDO iptables -n -L ` + PartitionChain + ` >/dev/null 2>&1`

// Cut says what a partition drops.
type Cut struct {
	// Hooks are the chains that jump to the partition's rules, of INPUT,
	// OUTPUT and FORWARD.
	Hooks []string
	// Keep lists addresses whose traffic, to or from the node, is never
	// dropped: how the lab itself reaches the node.
	Keep []string
	// Peers lists the addresses or subnets cut off, both ways.
	Peers []string
	// TCPPorts and UDPPorts, iptables multiport lists ("2377,7946"),
	// restrict the drop to traffic to those ports. Both empty: all
	// traffic to and from Peers is dropped.
	TCPPorts, UDPPorts string
}

// PartitionScript returns the script that applies c. It begins by healing,
// so that partitioning twice leaves one set of rules.
func PartitionScript(c Cut) string {
	var b strings.Builder
	b.WriteString(HealScript)
	b.WriteString("set -e\n$SUDO iptables -N " + PartitionChain + "\n")
	for _, k := range c.Keep {
		for _, dir := range []string{"-s", "-d"} {
			fmt.Fprintf(&b, "$SUDO iptables -A %s %s %s -j RETURN\n", PartitionChain, dir, Quote(k))
		}
	}
	for _, p := range c.Peers {
		for _, dir := range []string{"-s", "-d"} {
			if c.TCPPorts == "" && c.UDPPorts == "" {
				fmt.Fprintf(&b, "$SUDO iptables -A %s %s %s -j DROP\n", PartitionChain, dir, Quote(p))
				continue
			}
			if c.TCPPorts != "" {
				fmt.Fprintf(&b, "$SUDO iptables -A %s %s %s -p tcp -m multiport --dports %s -j DROP\n", PartitionChain, dir, Quote(p), c.TCPPorts)
			}
			if c.UDPPorts != "" {
				fmt.Fprintf(&b, "$SUDO iptables -A %s %s %s -p udp -m multiport --dports %s -j DROP\n", PartitionChain, dir, Quote(p), c.UDPPorts)
			}
		}
	}
	for _, h := range c.Hooks {
		fmt.Fprintf(&b, "$SUDO iptables -I %s 1 -m comment --comment %s -j %s\n", h, PartitionComment, PartitionChain)
	}
	return b.String()
}

// Quote makes s one word for a POSIX shell.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// CommandLine joins argv into a shell command line.
func CommandLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
