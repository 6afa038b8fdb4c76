package docker

import (
	"slices"
	"strings"
	"testing"
)

func TestNodeAliasesOneNamePerLabel(t *testing.T) {
	got := nodeAliases("frontend01", map[string]string{
		"tier":             "frontend",
		"Zone":             "EU1",         // lowercased
		"com.example.rack": "r1",          // a dot: not one DNS label
		"role":             "web server",  // a space
		"empty":            "",            // "empty-" ends with a hyphen
		"x":                "frontend01x", // fine
		"long":             strings.Repeat("a", 70),
	})
	want := []string{"frontend01", "tier-frontend", "tier-frontend.swarmlab", "x-frontend01x", "x-frontend01x.swarmlab", "zone-eu1", "zone-eu1.swarmlab"}
	if !slices.Equal(got, want) {
		t.Fatalf("nodeAliases = %q, want %q", got, want)
	}
}

func TestNodeAliasesWithoutLabels(t *testing.T) {
	if got := nodeAliases("m1", nil); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("nodeAliases = %q, want only the node's name", got)
	}
	// A label alias that equals the node's name is not listed twice.
	want := []string{"tier-a", "tier-a.swarmlab"}
	if got := nodeAliases("tier-a", map[string]string{"tier": "a"}); !slices.Equal(got, want) {
		t.Fatalf("nodeAliases = %q, want %q", got, want)
	}
}
