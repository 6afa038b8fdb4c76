package topology

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// Default fills in every field the file may leave out. It only sets fields
// that are empty, so it is safe to call more than once.
func (t *Topology) Default() {
	if t.Name == "" && t.source != "" {
		base := filepath.Base(t.source)
		t.Name = strings.TrimSuffix(base, filepath.Ext(base))
		t.markDefaulted("name")
	}
	if t.Provider.Type == "" {
		t.Provider.Type = ProviderDocker
		t.markDefaulted("provider.type")
	}
	if t.Provider.Type == ProviderDocker && t.Provider.Engine == "" && !t.written("provider.engine") {
		t.Provider.Engine = DefaultEngine
		t.markDefaulted("provider.engine")
	}
	// An explicit "0s" is left for Validate to reject rather than silently
	// replaced.
	if t.Swarm.DispatcherHeartbeat.Duration == 0 && !t.written("swarm.dispatcherHeartbeat") {
		t.Swarm.DispatcherHeartbeat.Duration = DefaultHeartbeat
		t.markDefaulted("swarm.dispatcherHeartbeat")
	}
	for i := range t.Nodes {
		if t.Nodes[i].Availability == "" {
			t.Nodes[i].Availability = AvailabilityActive
			t.markDefaulted(fmt.Sprintf("nodes[%d].availability", i))
		}
	}
	if t.Provider.Type == ProviderSSH {
		t.defaultSSH()
	}
	for i := range t.Stacks {
		if t.Stacks[i].Name == "" && t.Stacks[i].File != "" {
			t.Stacks[i].Name = filepath.Base(filepath.Dir(t.StackPath(i)))
			t.markDefaulted(fmt.Sprintf("stacks[%d].name", i))
		}
	}
}

func (t *Topology) markDefaulted(path string) {
	if t.defaulted == nil {
		t.defaulted = map[string]bool{}
	}
	t.defaulted[path] = true
}

// written reports whether path was present in the source file.
func (t *Topology) written(path string) bool {
	_, ok := t.lines[path]
	return ok
}

// defaultSSH gives every node an ssh block, filling what a node leaves out
// from the provider's block, then from the SSH defaults. A node that has no
// ssh block at all is left for Validate to reject: it has no address.
func (t *Topology) defaultSSH() {
	def := t.Provider.SSH
	if def == nil {
		def = &SSH{}
	}
	str := func(dst *string, inherited, fallback, path string) {
		switch {
		case *dst != "":
		case inherited != "":
			*dst = inherited
			t.markDefaulted(path)
		case fallback != "":
			*dst = fallback
			t.markDefaulted(path)
		}
	}
	for i := range t.Nodes {
		s := t.Nodes[i].SSH
		if s == nil {
			continue
		}
		path := fmt.Sprintf("nodes[%d].ssh.", i)
		str(&s.User, def.User, "", path+"user")
		str(&s.IdentityFile, def.IdentityFile, "", path+"identityFile")
		str(&s.KnownHosts, def.KnownHosts, DefaultSSHKnownHosts, path+"knownHosts")
		if s.Port == 0 && !t.written(path+"port") {
			s.Port = cmp.Or(def.Port, DefaultSSHPort)
			t.markDefaulted(path + "port")
		}
		if !t.written(path+"insecureIgnoreHostKey") && def.InsecureIgnoreHostKey {
			s.InsecureIgnoreHostKey = true
			t.markDefaulted(path + "insecureIgnoreHostKey")
		}
		if s.AdvertiseAddr == "" {
			if a, err := netip.ParseAddr(s.Address); err == nil {
				s.AdvertiseAddr = a.String()
				t.markDefaulted(path + "advertiseAddr")
			}
		}
	}
}
