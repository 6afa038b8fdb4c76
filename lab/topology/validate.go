package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/swarmlab/swarmlab/lab/internal/yamlstrict"
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

// hostName is what the ssh provider accepts as a host name.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

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
	v.engine()
	v.swarm()
	v.nodes()
	v.ssh()
	v.stacks()
	v.e2e()

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
	case "":
		v.errorf("provider.type", "missing (expected one of %s)", strings.Join(providers, ", "))
	default:
		v.errorf("provider.type", "%q is not one of %s", t.Provider.Type, strings.Join(providers, ", "))
	}
}

// CheckStackName returns why name cannot name a stack (as a topology's
// stacks[].name, or swarmlab deploy --stack), or nil: stack names become
// parts of network and service names.
func CheckStackName(name string) error {
	if !dnsLabel.MatchString(name) {
		return fmt.Errorf("%q is not a valid stack name: %s", name, dnsLabelRule(maxDNSLabelLen))
	}
	return nil
}

// engine checks provider.engine: a supported version, on the docker provider
// only.
func (v *validator) engine() {
	t := v.t
	e := t.Provider.Engine
	from := ""
	if t.fromEnv != "" {
		from = " (set by " + t.fromEnv + ")"
	}
	switch {
	case t.Provider.Type != ProviderDocker:
		if e != "" || t.written("provider.engine") {
			v.errorf("provider.engine", "only allowed with provider type docker (the hosts of a %s topology run the engine they have)", t.Provider.Type)
		}
	case e == "":
		v.errorf("provider.engine", "empty (expected one of %s; leave it out for %s)", quoted(Engines), DefaultEngine)
	case !slices.Contains(Engines, e):
		hint := ""
		if strings.Count(e, ".") > 0 && slices.Contains(Engines, majorOf(e)) {
			hint = fmt.Sprintf("; the lab pins the major version: %q", majorOf(e))
		}
		v.errorf("provider.engine", "%q%s is not a supported Docker engine version (supported: %s)%s", e, from, quoted(Engines), hint)
	}
}

// majorOf is "26" for "26.1.5", "20.10" for "20.10.24" (Docker's old scheme
// had two-part majors).
func majorOf(version string) string {
	parts := strings.Split(version, ".")
	if parts[0] == "20" || parts[0] == "19" || parts[0] == "18" || parts[0] == "17" {
		if len(parts) >= 2 {
			return parts[0] + "." + parts[1]
		}
	}
	return parts[0]
}

func quoted(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
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
				v.errorf(yamlstrict.Join(path+".labels", key), "%q is not a valid label key (expected letters, digits, '.', '_', '/' and '-')", key)
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
		} else if msg := checkFile(s.File, v.t.StackPath(i), "a compose file"); msg != "" {
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

// checkFile returns what is wrong with file, resolved to resolved, which
// must be a regular file holding kind ("a compose file"), or "".
func checkFile(file, resolved, kind string) string {
	info, err := os.Stat(resolved)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%q does not exist (resolved to %s)", file, resolved)
	case err != nil:
		return fmt.Sprintf("%q cannot be read: %v", file, err)
	case info.IsDir():
		return fmt.Sprintf("%q is a directory (expected %s)", file, kind)
	case !info.Mode().IsRegular():
		return fmt.Sprintf("%q is not a regular file (expected %s)", file, kind)
	}
	return ""
}

// lineOf returns the line of path in the source file or, for a field that
// was absent (and perhaps defaulted), of its nearest written parent.
func (t *Topology) lineOf(path string) int { return yamlstrict.LineOf(t.lines, path) }

// ssh checks the ssh blocks: required for every node of an ssh topology,
// forbidden in a docker one.
func (v *validator) ssh() {
	t := v.t
	if t.Provider.Type != ProviderSSH {
		if t.Provider.SSH != nil && t.written("provider.ssh") {
			v.errorf("provider.ssh", "only allowed with provider type ssh (this topology's provider is %s)", t.Provider.Type)
		}
		for i, n := range t.Nodes {
			if n.SSH != nil {
				v.errorf(fmt.Sprintf("nodes[%d].ssh", i), "only allowed with provider type ssh (this topology's provider is %s)", t.Provider.Type)
			}
		}
		return
	}
	if t.Swarm.Subnet != "" {
		v.errorf("swarm.subnet", "only allowed with provider type docker (ssh hosts keep the addresses they have)")
	}
	if d := t.Provider.SSH; d != nil && t.written("provider.ssh.port") {
		v.port("provider.ssh.port", d.Port)
	}
	firstByAddr := map[string]string{}
	for i, n := range t.Nodes {
		path := fmt.Sprintf("nodes[%d].ssh", i)
		s := n.SSH
		if s == nil {
			v.errorf(path, "missing (a node of an ssh topology needs ssh.address, the host to connect to)")
			continue
		}
		switch {
		case s.Address == "":
			v.errorf(path+".address", "missing (expected the host name or IP address to connect to)")
		case !isIP(s.Address) && !hostName.MatchString(s.Address):
			v.errorf(path+".address", "%q is not a host name or IP address", s.Address)
		default:
			key := fmt.Sprintf("%s:%d", s.Address, s.Port)
			if first, dup := firstByAddr[key]; dup {
				v.errorf(path+".address", "%s is also the host of %s (line %d): every node needs a host of its own", key, first, t.lineOf(first))
			} else {
				firstByAddr[key] = path
			}
		}
		if s.User == "" {
			v.errorf(path+".user", "missing (set it here or in provider.ssh.user)")
		}
		if !t.defaulted[path+".port"] { // a defaulted port is checked where it is written
			v.port(path+".port", s.Port)
		}
		switch {
		case s.IdentityFile == "":
			v.errorf(path+".identityFile", "missing (expected a private key file; set it here or in provider.ssh.identityFile)")
		default:
			if msg := checkFile(s.IdentityFile, ExpandHome(s.IdentityFile), "a private key file"); msg != "" {
				v.errorf(path+".identityFile", "%s%s", msg, v.origin(path+".identityFile", "provider's ssh block"))
			}
		}
		if s.InsecureIgnoreHostKey {
			v.warnf(path+".insecureIgnoreHostKey", "host keys of %s are not checked: anyone on the path can pose as this host", s.Address)
		} else if msg := checkFile(s.KnownHosts, ExpandHome(s.KnownHosts), "a known_hosts file"); msg != "" {
			v.errorf(path+".knownHosts", "%s%s (add the host's key, e.g. with ssh-keyscan, or set insecureIgnoreHostKey: true)",
				msg, v.origin(path+".knownHosts", "provider's ssh block or the default"))
		}
		switch {
		case s.AdvertiseAddr == "" && hostName.MatchString(s.Address):
			v.errorf(path+".advertiseAddr", "missing (address %q is a host name; swarm advertises an IP address, so set advertiseAddr)", s.Address)
		case s.AdvertiseAddr != "" && !isIP(s.AdvertiseAddr):
			v.errorf(path+".advertiseAddr", "%q is not an IP address (swarm advertises the IP its peers reach the node at)", s.AdvertiseAddr)
		}
	}
}

func (v *validator) port(path string, port int) {
	if port < 1 || port > 65535 {
		v.errorf(path, "%d is not a TCP port (expected 1 to 65535)", port)
	}
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// ExpandHome replaces a leading "~/" with the user's home directory.
func ExpandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}
