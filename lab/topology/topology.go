// Package topology loads, defaults and validates swarmlab topology files:
// versioned YAML documents that describe the nodes of a lab swarm and the
// stacks deployed onto it.
//
// Loading, defaulting and validating are separate steps (Parse/Load, Default,
// Validate) so tools can inspect a file as written; LoadFile runs all three
// and is what most callers want.
package topology

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/swarmlab/swarmlab/lab/internal/yamlstrict"
)

// APIVersion and Kind identify a topology document, in the spirit of
// Kubernetes-style apiVersion/kind headers, so the format can evolve.
const (
	APIVersion = "swarmlab.dev/v1alpha1"
	Kind       = "Topology"
)

// Node roles.
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
)

// Node availabilities, as understood by `docker node update --availability`.
const (
	AvailabilityActive = "active"
	AvailabilityPause  = "pause"
	AvailabilityDrain  = "drain"
)

// Provider types.
const (
	ProviderDocker = "docker"
	ProviderSSH    = "ssh"
)

// Docker engine versions the nodes of a docker topology can run
// (provider.engine): Debian 13's docker.io 26.1 (the default) or Debian 12's
// 20.10. lab/images has a node image for each.
const DefaultEngine = "26"

// Engines lists the supported engine versions, the default first.
var Engines = []string{DefaultEngine, "20.10"}

// EngineEnv, when set, overrides the engine of a docker topology loaded with
// LoadFile, whatever its file says (scripts/test runs one suite on 20.10 so).
// A topology of another provider ignores it, with a warning.
const EngineEnv = "SWARMLAB_ENGINE"

// SSH defaults.
const (
	DefaultSSHPort       = 22
	DefaultSSHKnownHosts = "~/.ssh/known_hosts"
)

// DefaultHeartbeat is the dispatcher heartbeat used when the file sets none.
// Swarm's own default (5s) makes failure specs slow; a lab wants fast
// failure detection.
const DefaultHeartbeat = time.Second

// Topology is a parsed topology file.
type Topology struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Name       string   `yaml:"name,omitempty"`
	Provider   Provider `yaml:"provider,omitempty"`
	Swarm      Swarm    `yaml:"swarm,omitempty"`
	Nodes      []Node   `yaml:"nodes"`
	Stacks     []Stack  `yaml:"stacks,omitempty"`
	// E2E says what the e2e suite must run on this topology.
	E2E E2E `yaml:"e2e,omitempty"`

	source    string          // file name as given to Parse/Load
	dir       string          // absolute directory stack files are relative to
	lines     map[string]int  // field path -> line where it is written
	defaulted map[string]bool // field paths filled in by Default
	fromEnv   string          // the variable provider.engine was set from (EngineEnv), if any
}

// Provider says what runs the lab's nodes.
type Provider struct {
	// Type is docker (Docker-in-Docker containers on the local engine) or
	// ssh (hosts of your own that already run Docker, reached over SSH).
	Type string `yaml:"type,omitempty"`
	// SSH holds the defaults of every node's ssh block (ssh provider only).
	// Address and AdvertiseAddr are per node and not allowed here.
	SSH *SSH `yaml:"ssh,omitempty" yamlstrict:"without=address advertiseAddr"`
	// Engine is the Docker engine version the nodes run (docker provider
	// only): one of Engines, DefaultEngine when left out. ssh hosts run the
	// engine they have. EngineEnv overrides it in LoadFile.
	Engine string `yaml:"engine,omitempty"`
}

// SSH says how to reach a host over SSH. After Default, every node of an
// ssh topology has one, with the provider's defaults filled in.
type SSH struct {
	// Address is the host name or IP the lab connects to (nodes only).
	Address string `yaml:"address,omitempty"`
	User    string `yaml:"user,omitempty"`
	Port    int    `yaml:"port,omitempty"`
	// IdentityFile is the private key file; a leading ~/ is the home directory.
	IdentityFile string `yaml:"identityFile,omitempty"`
	// KnownHosts is the known_hosts file host keys are checked against.
	KnownHosts string `yaml:"knownHosts,omitempty"`
	// InsecureIgnoreHostKey turns host key checking off; it must be written
	// out, never assumed.
	InsecureIgnoreHostKey bool `yaml:"insecureIgnoreHostKey,omitempty"`
	// AdvertiseAddr is the IP swarm advertises for the node (nodes only);
	// it defaults to Address when that is an IP.
	AdvertiseAddr string `yaml:"advertiseAddr,omitempty"`
}

// Swarm holds swarm-wide settings.
type Swarm struct {
	DispatcherHeartbeat Duration `yaml:"dispatcherHeartbeat,omitempty"`
	// Subnet is an optional IPv4 CIDR for the lab's bridge network.
	Subnet string `yaml:"subnet,omitempty"`
}

// Node is one swarm node; its name becomes the container's hostname.
type Node struct {
	Name         string            `yaml:"name"`
	Role         string            `yaml:"role"`
	Availability string            `yaml:"availability,omitempty"`
	Labels       map[string]string `yaml:"labels,omitempty" yamlstrict:"entry=label"`
	// SSH says how to reach the node's host (ssh provider only).
	SSH *SSH `yaml:"ssh,omitempty"`
}

// Stack is a compose file deployed with `docker stack deploy`. File comes
// first: the decoder's messages list a struct's keys in field order
// ("expected one of file, name").
type Stack struct {
	// File is the path as written, relative to the topology file's
	// directory; use Topology.StackPath for the resolved path.
	File string `yaml:"file"`
	Name string `yaml:"name,omitempty"`
}

// Duration is a time.Duration written in YAML as a Go duration string ("1s").
type Duration struct{ time.Duration }

// UnmarshalYAML accepts a Go duration string such as "1s" or "500ms".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"1s\", found %s", yamlstrict.Describe(n))
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as a string such as "1s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// IsZero lets omitempty drop an unset duration.
func (d Duration) IsZero() bool { return d.Duration == 0 }

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (expected a Go duration such as \"1s\" or \"500ms\")", s)
	}
	return v, nil
}

// Parse decodes a topology strictly: unknown keys, wrong types, empty and
// multi-document input are errors. filename is used in messages, to derive
// the default name and to resolve stack files; it is not read.
// Errors are of type Errors.
func Parse(data []byte, filename string) (*Topology, error) {
	t, errs := parse(data, filename)
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// Load reads and parses the topology file at path.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	return Parse(data, path)
}

// LoadFile loads, defaults and validates the topology at path. Decoding and
// validation problems are reported together, as one Errors value, so a user
// fixes a file in one pass.
func LoadFile(path string) (*Topology, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read topology: %w", err)
	}
	t, decodeErrs := parse(data, path)
	if t == nil {
		return nil, nil, decodeErrs
	}
	envWarning := t.engineFromEnv()
	t.Default()
	warnings, err := t.Validate()
	if envWarning != "" {
		warnings = append(warnings, envWarning)
	}
	var validateErrs Errors
	if err != nil && !errors.As(err, &validateErrs) {
		return nil, warnings, err
	}
	if all := merge(decodeErrs, validateErrs); len(all) > 0 {
		return nil, warnings, all
	}
	return t, warnings, nil
}

// engineFromEnv applies EngineEnv to a docker topology (a topology with no
// provider type is one), and returns a warning when a topology of another
// provider ignores it.
func (t *Topology) engineFromEnv() (warning string) {
	v, ok := os.LookupEnv(EngineEnv)
	if !ok || v == "" {
		return ""
	}
	if t.Provider.Type != "" && t.Provider.Type != ProviderDocker {
		return fmt.Sprintf("%s: %s=%s ignored: a %s topology's hosts run the engine they have", displayName(t.source), EngineEnv, v, t.Provider.Type)
	}
	t.Provider.Engine = v
	t.fromEnv = EngineEnv
	return ""
}

// Engine returns the Docker engine version of the topology's nodes: the
// provider's engine, or DefaultEngine for a docker topology that names
// none; empty for other providers.
func (t *Topology) Engine() string {
	switch {
	case t.Provider.Type != "" && t.Provider.Type != ProviderDocker:
		return ""
	case t.Provider.Engine == "":
		return DefaultEngine
	}
	return t.Provider.Engine
}

// Source returns the file name the topology was parsed from, as given.
func (t *Topology) Source() string { return t.source }

// Managers returns the manager nodes, in file order.
func (t *Topology) Managers() []Node { return t.nodesWithRole(RoleManager) }

// Workers returns the worker nodes, in file order.
func (t *Topology) Workers() []Node { return t.nodesWithRole(RoleWorker) }

func (t *Topology) nodesWithRole(role string) []Node {
	var nodes []Node
	for _, n := range t.Nodes {
		if n.Role == role {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// StackPath returns the absolute path of stack i's compose file.
func (t *Topology) StackPath(i int) string {
	file := t.Stacks[i].File
	if filepath.IsAbs(file) {
		return filepath.Clean(file)
	}
	dir := t.dir
	if dir == "" {
		// Built in code rather than parsed: resolve against the working directory.
		dir, _ = filepath.Abs(".")
	}
	return filepath.Join(dir, file)
}
