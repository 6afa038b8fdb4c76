package docker

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider/common"
)

func TestFreeSubnetSkipsUsedOnes(t *testing.T) {
	used := []netip.Prefix{
		netip.MustParsePrefix("172.17.0.0/16"),
		netip.MustParsePrefix("10.99.0.0/24"),
		netip.MustParsePrefix("10.99.1.0/25"),
	}
	got, ok := freeSubnet(used)
	if !ok || got != netip.MustParsePrefix("10.99.2.0/24") {
		t.Fatalf("freeSubnet = %v, %v; want 10.99.2.0/24", got, ok)
	}
	if _, ok := freeSubnet([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); ok {
		t.Fatal("found a subnet inside a used 10.0.0.0/8")
	}
}

func TestPartitionCutsTheSubnetButNotTheGateway(t *testing.T) {
	s := common.PartitionScript(partitionCut("10.99.3.1", "10.99.3.0/24"))
	want := []string{
		"$SUDO iptables -A SWARMLAB-PARTITION -s 10.99.3.1 -j RETURN",
		"$SUDO iptables -A SWARMLAB-PARTITION -d 10.99.3.1 -j RETURN",
		"$SUDO iptables -A SWARMLAB-PARTITION -s 10.99.3.0/24 -j DROP",
		"$SUDO iptables -A SWARMLAB-PARTITION -d 10.99.3.0/24 -j DROP",
		"$SUDO iptables -I INPUT 1 -m comment --comment swarmlab-partition -j SWARMLAB-PARTITION",
		"$SUDO iptables -I OUTPUT 1 -m comment --comment swarmlab-partition -j SWARMLAB-PARTITION",
		"$SUDO iptables -I FORWARD 1 -m comment --comment swarmlab-partition -j SWARMLAB-PARTITION",
	}
	// In this order: the gateway's RETURN before the subnet's DROP.
	at := 0
	for _, w := range want {
		i := strings.Index(s[at:], w)
		if i < 0 {
			t.Fatalf("partition script lacks %q after offset %d:\n%s", w, at, s)
		}
		at += i + len(w)
	}
	if strings.Contains(s, "multiport") {
		t.Errorf("a docker node's partition drops all traffic, not some ports:\n%s", s)
	}
}
