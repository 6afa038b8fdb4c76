package docker

import (
	"net/netip"
	"testing"
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
