package docker

import (
	"sort"
	"strings"
)

// AliasDomain ends the dotted form of a node's label aliases.
const AliasDomain = ".swarmlab"

// nodeAliases lists the DNS names a node container answers to on the lab
// network: its own name, then, for each of its labels, "<key>-<value>" and
// "<key>-<value>.swarmlab", so that one name covers every node with that
// label. Docker's embedded DNS on the lab network answers a name shared by
// several containers with all their addresses: with the label tier=frontend
// on frontend01 and frontend02, "tier-frontend" resolves to both, and a
// frontend node added to the topology joins that answer with no other change.
// The dotted form is the one a task container INSIDE a node can resolve: the
// node's engine (Debian's 20.10) answers its overlays' names itself and
// forwards other names to the node's resolver, i.e. this network's, but
// only names with a dot in them (measured: "frontend01" fails there,
// "frontend01.swarmlab-<lab>" and "deb.debian.org" resolve). app/vote's
// edge balances over "tier-frontend.swarmlab".
// A label gets aliases only if "<key>-<value>", lowercased, is a valid DNS
// label (letters, digits and inner hyphens, at most 63 characters); others
// (keys with dots, values with spaces...) are skipped. A label alias equal
// to the node's own name is not repeated (its dotted form is kept).
func nodeAliases(name string, labels map[string]string) []string {
	var extra []string
	for k, v := range labels {
		a := strings.ToLower(k + "-" + v)
		if !dnsLabel(a) {
			continue
		}
		if a != name {
			extra = append(extra, a)
		}
		extra = append(extra, a+AliasDomain)
	}
	sort.Strings(extra)
	return append([]string{name}, extra...)
}

// dnsLabel says whether s is one label of a host name (RFC 1123).
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
