package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// dnsLabel is RFC 1123 label syntax: node names become hostnames, and the lab
// and stack names become parts of container, network and service names.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// labelKey is the character set swarmlab accepts in Docker label keys.
var labelKey = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)

const (
	maxDNSLabelLen = 63 // what dnsLabel allows
	maxLabNameLen  = 40 // leaves room for node and network suffixes in container names
	maxHeartbeat   = time.Minute
	minSubnetBits  = 16
	maxSubnetBits  = 28 // a /28 still has room for a handful of nodes
)

var (
	roles          = []string{RoleManager, RoleWorker}
	availabilities = []string{AvailabilityActive, AvailabilityPause, AvailabilityDrain}
	providers      = []string{ProviderDocker, ProviderSSH}
)

// Validate checks a defaulted topology. It reports every error it finds, as
// an Errors sorted by line, and warnings for settings that work but are
// probably not what the author wants. It stats stack files, resolved against
// the topology file's directory.
func (t *Topology) Validate() (warnings []string, err error) {
	v := &validator{t: t}
	v.header()
	v.swarm()
	v.nodes()
	v.stacks()

	sortIssues(v.warnings)
	for _, w := range v.warnings {
		warnings = append(warnings, w.String())
	}
	if len(v.errs) == 0 {
		return warnings, nil
	}
	sortIssues(v.errs)
	return warnings, v.errs
}

type validator struct {
	t        *Topology
	errs     Errors
	warnings []Issue
}

func (v *validator) issue(path, format string, args ...any) Issue {
	return Issue{File: v.t.source, Line: v.t.lineOf(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, v.issue(path, format, args...))
}

func (v *validator) warnf(path, format string, args ...any) {
	v.warnings = append(v.warnings, v.issue(path, format, args...))
}

// origin explains where a value the user did not write came from.
func (v *validator) origin(path, from string) string {
	if v.t.defaulted[path] {
		return " (derived from the " + from + ")"
	}
	return ""
}

func (v *validator) header() {
	t := v.t
	switch t.APIVersion {
	case APIVersion:
	case "":
		v.errorf("apiVersion", "missing (expected %q)", APIVersion)
	default:
		v.errorf("apiVersion", "%q is not a supported version (supported: %s)", t.APIVersion, APIVersion)
	}
	switch t.Kind {
	case Kind:
	case "":
		v.errorf("kind", "missing (expected %q)", Kind)
	default:
		v.errorf("kind", "expected %q, found %q", Kind, t.Kind)
	}

	switch {
	case t.Name == "":
		v.errorf("name", "missing, and there is no file name to derive it from")
	case len(t.Name) > maxLabNameLen || !dnsLabel.MatchString(t.Name):
		v.errorf("name", "%q%s is not a valid lab name: %s",
			t.Name, v.origin("name", "file name"), dnsLabelRule(maxLabNameLen))
	}

	switch t.Provider.Type {
	case ProviderDocker:
	case ProviderSSH:
		v.errorf("provider.type", "provider ssh is not implemented yet")
	case "":
		v.errorf("provider.type", "missing (expected one of %s)", strings.Join(providers, ", "))
	default:
		v.errorf("provider.type", "%q is not one of %s", t.Provider.Type, strings.Join(providers, ", "))
	}
}

// dnsLabelRule says what dnsLabel accepts, for names limited to maxLen characters.
func dnsLabelRule(maxLen int) string {
	return fmt.Sprintf("expected at most %d lowercase letters, digits and '-', starting and ending with a letter or digit", maxLen)
}

func (v *validator) swarm() {
	hb := v.t.Swarm.DispatcherHeartbeat.Duration
	switch {
	case hb <= 0:
		v.errorf("swarm.dispatcherHeartbeat", "must be greater than 0, found %s", hb)
	case hb > maxHeartbeat:
		v.errorf("swarm.dispatcherHeartbeat", "must be at most 1m, found %s", hb)
	}

	if s := v.t.Swarm.Subnet; s != "" {
		if msg := checkSubnet(s); msg != "" {
			v.errorf("swarm.subnet", "%s", msg)
		}
	}
}

// checkSubnet returns what is wrong with an IPv4 CIDR, or "".
func checkSubnet(s string) string {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a CIDR (expected an IPv4 network such as 10.99.7.0/24)", s)
	case !p.Addr().Is4():
		return fmt.Sprintf("%q is not an IPv4 network (expected one such as 10.99.7.0/24)", s)
	case p.Bits() < minSubnetBits || p.Bits() > maxSubnetBits:
		return fmt.Sprintf("%q has prefix /%d (expected /%d to /%d)", s, p.Bits(), minSubnetBits, maxSubnetBits)
	case p.Masked() != p:
		return fmt.Sprintf("%q has host bits set (expected the network address %s)", s, p.Masked())
	}
	return ""
}

func (v *validator) nodes() {
	t := v.t
	if len(t.Nodes) == 0 {
		v.errorf("nodes", "at least one node is required")
		return
	}
	firstByName := map[string]string{} // node name -> path of its first definition
	for i, n := range t.Nodes {
		path := fmt.Sprintf("nodes[%d]", i)
		v.nodeName(n.Name, path+".name", firstByName)

		switch {
		case n.Role == "":
			v.errorf(path+".role", "missing (expected one of %s)", strings.Join(roles, ", "))
		case !slices.Contains(roles, n.Role):
			v.errorf(path+".role", "%q is not one of %s", n.Role, strings.Join(roles, ", "))
		}
		if !slices.Contains(availabilities, n.Availability) {
			v.errorf(path+".availability", "%q is not one of %s", n.Availability, strings.Join(availabilities, ", "))
		}
		for _, key := range slices.Sorted(maps.Keys(n.Labels)) {
			if !labelKey.MatchString(key) {
				v.errorf(joinPath(path+".labels", key), "%q is not a valid label key (expected letters, digits, '.', '_', '/' and '-')", key)
			}
		}
	}

	managers := len(t.Managers())
	switch {
	case managers == 0:
		v.errorf("nodes", "no node has role manager (a swarm needs at least one)")
	case managers%2 == 0:
		majority := managers/2 + 1
		tolerated := (managers - 1) / 2
		v.warnf("nodes", "%d managers: raft quorum needs a majority (%d of %d), so %d managers tolerate %d failure(s), the same as %d would; use an odd number such as %d or %d",
			managers, majority, managers, managers, tolerated, managers-1, managers-1, managers+1)
	}
}

func (v *validator) nodeName(name, path string, firstByName map[string]string) {
	switch {
	case name == "":
		v.errorf(path, "missing (every node needs a name; it becomes the hostname)")
		return
	case !dnsLabel.MatchString(name):
		v.errorf(path, "%q is not a valid node name: %s", name, dnsLabelRule(maxDNSLabelLen))
	}
	if first, dup := firstByName[name]; dup {
		v.errorf(path, "duplicate node name %q (first defined at line %d)", name, v.t.lineOf(first))
		return
	}
	firstByName[name] = path
}

func (v *validator) stacks() {
	firstByName := map[string]string{}
	for i, s := range v.t.Stacks {
		path := fmt.Sprintf("stacks[%d]", i)
		if s.File == "" {
			v.errorf(path+".file", "missing (expected a compose file path relative to the topology file)")
		} else if msg := checkStackFile(s.File, v.t.StackPath(i)); msg != "" {
			v.errorf(path+".file", "%s", msg)
		}

		namePath := path + ".name"
		switch {
		case s.Name == "":
			if s.File != "" {
				v.errorf(namePath, "missing")
			}
			continue
		case !dnsLabel.MatchString(s.Name):
			v.errorf(namePath, "%q%s is not a valid stack name: %s",
				s.Name, v.origin(namePath, "file's directory name"), dnsLabelRule(maxDNSLabelLen))
		}
		if first, dup := firstByName[s.Name]; dup {
			v.errorf(namePath, "duplicate stack name %q%s (first used at line %d)",
				s.Name, v.origin(namePath, "file's directory name"), v.t.lineOf(first))
			continue
		}
		firstByName[s.Name] = namePath
	}
}

// checkStackFile returns what is wrong with a stack's compose file, or "".
func checkStackFile(file, resolved string) string {
	info, err := os.Stat(resolved)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%q does not exist (resolved to %s)", file, resolved)
	case err != nil:
		return fmt.Sprintf("%q cannot be read: %v", file, err)
	case info.IsDir():
		return fmt.Sprintf("%q is a directory (expected a compose file)", file)
	case !info.Mode().IsRegular():
		return fmt.Sprintf("%q is not a regular file (expected a compose file)", file)
	}
	return ""
}

// lineOf returns the line of path in the source file or, for a field that
// was absent (and perhaps defaulted), of its nearest written parent.
func (t *Topology) lineOf(path string) int {
	for {
		if line, ok := t.lines[path]; ok {
			return line
		}
		if path == "" {
			return 0
		}
		i := strings.LastIndexAny(path, ".[")
		path = path[:max(i, 0)]
	}
}
