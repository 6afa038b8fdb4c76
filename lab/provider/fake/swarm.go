package fake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Manager is just enough of a swarm manager's engine, over HTTP, for a
// stack deploy, the wait for it to converge and the lab's reads of the
// swarm: it keeps the networks, secrets, configs and services it is given,
// and reports every service's tasks running at once, one per replica (a
// global service: one per node), on its nodes in turn. It answers as the
// node's own engine too: ping and version.
type Manager struct {
	srv *httptest.Server

	mu       sync.Mutex
	version  string
	hosts    []string // node hostnames; the first is the leader
	labels   map[string]string
	networks []object
	secrets  []object
	configs  []object
	services []swarm.Service
	calls    []string
	seq      int
}

// object is a network, secret or config, as far as the deploy looks.
type object struct {
	ID     string            `json:"Id"`
	Name   string            `json:"Name"`
	Labels map[string]string `json:"Labels"`
}

// NewManager starts a Manager of a swarm of nodes with these hostnames
// (the first is the manager, and leader; the others workers), whose swarm
// carries labels; Close stops it.
func NewManager(labels map[string]string, hostnames ...string) *Manager {
	m := &Manager{version: "29.0.0-fake", hosts: hostnames, labels: labels}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	return m
}

// SetVersion sets the engine's server version (default "29.0.0-fake").
func (m *Manager) SetVersion(v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.version = v
}

// Addr is the engine's DOCKER_HOST.
func (m *Manager) Addr() string { return "tcp://" + strings.TrimPrefix(m.srv.URL, "http://") }

// Client returns a client for the engine.
func (m *Manager) Client() (*client.Client, error) {
	return client.New(client.WithHost(m.Addr()), client.WithAPIVersionNegotiation())
}

// Close stops the engine.
func (m *Manager) Close() { m.srv.Close() }

// Services returns the services it holds.
func (m *Manager) Services() []swarm.Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]swarm.Service(nil), m.services...)
}

// Calls returns "METHOD /path" of every request, without the API version.
func (m *Manager) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

var apiPrefix = regexp.MustCompile(`^/v[0-9.]+/`)

func (m *Manager) serve(w http.ResponseWriter, r *http.Request) {
	path := apiPrefix.ReplaceAllString(r.URL.Path, "/")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, r.Method+" "+path)
	w.Header().Set("Api-Version", "1.47")
	w.Header().Set("Content-Type", "application/json")
	f := parseFilters(r.URL.Query().Get("filters"))
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case path == "/_ping":
		w.Write([]byte("OK"))
	case path == "/version":
		reply(w, map[string]string{"Version": m.version, "ApiVersion": "1.47", "Os": "linux"})
	case path == "/swarm":
		reply(w, swarm.Swarm{ClusterInfo: swarm.ClusterInfo{ID: "fake-swarm", Spec: swarm.Spec{Annotations: swarm.Annotations{Labels: m.labels}}}})
	case path == "/nodes":
		reply(w, m.nodes())
	case path == "/networks" && get:
		reply(w, f.keep(m.networks))
	case path == "/networks/create":
		var req struct {
			Name   string
			Labels map[string]string
		}
		json.NewDecoder(r.Body).Decode(&req)
		id := m.add(&m.networks, req.Name, req.Labels)
		w.WriteHeader(http.StatusCreated)
		reply(w, map[string]string{"Id": id})
	case strings.HasPrefix(path, "/networks/") && get:
		m.inspect(w, m.networks, strings.TrimPrefix(path, "/networks/"))
	case path == "/secrets" && get:
		reply(w, specs(f.keep(m.secrets)))
	case path == "/configs" && get:
		reply(w, specs(f.keep(m.configs)))
	case path == "/secrets/create", path == "/configs/create":
		var spec swarm.Annotations
		json.NewDecoder(r.Body).Decode(&spec)
		list := &m.secrets
		if path == "/configs/create" {
			list = &m.configs
		}
		w.WriteHeader(http.StatusCreated)
		reply(w, map[string]string{"ID": m.add(list, spec.Name, spec.Labels)})
	case strings.HasPrefix(path, "/secrets/") && get:
		m.inspectSpec(w, m.secrets, strings.TrimPrefix(path, "/secrets/"))
	case strings.HasPrefix(path, "/configs/") && get:
		m.inspectSpec(w, m.configs, strings.TrimPrefix(path, "/configs/"))
	case path == "/services" && get:
		var out []swarm.Service
		for _, s := range m.services {
			if f.match(s.Spec.Name, s.ID, s.Spec.Labels) {
				out = append(out, m.withStatus(s))
			}
		}
		reply(w, nonNil(out))
	case path == "/services/create":
		var spec swarm.ServiceSpec
		json.NewDecoder(r.Body).Decode(&spec)
		m.seq++
		s := swarm.Service{ID: fmt.Sprintf("svc%d", m.seq), Spec: spec}
		s.Version.Index = 1
		m.services = append(m.services, m.withEndpoint(s))
		w.WriteHeader(http.StatusCreated)
		reply(w, swarm.ServiceCreateResponse{ID: s.ID})
	case strings.HasPrefix(path, "/services/") && strings.HasSuffix(path, "/update"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/services/"), "/update")
		for i, s := range m.services {
			if s.ID == id {
				json.NewDecoder(r.Body).Decode(&s.Spec)
				s.Version.Index++
				m.services[i] = m.withEndpoint(s)
				reply(w, swarm.ServiceUpdateResponse{})
				return
			}
		}
		notFound(w, "service "+id)
	case path == "/tasks":
		reply(w, m.tasks(f))
	default:
		notFound(w, r.Method+" "+path)
	}
}

func reply(w http.ResponseWriter, v any) { json.NewEncoder(w).Encode(v) }

func notFound(w http.ResponseWriter, what string) {
	w.WriteHeader(http.StatusNotFound)
	reply(w, map[string]string{"message": what + ": not in the fake manager"})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (m *Manager) add(list *[]object, name string, labels map[string]string) string {
	m.seq++
	id := fmt.Sprintf("obj%d", m.seq)
	*list = append(*list, object{ID: id, Name: name, Labels: labels})
	return id
}

func (m *Manager) inspect(w http.ResponseWriter, list []object, idOrName string) {
	for _, o := range list {
		if o.ID == idOrName || o.Name == idOrName {
			reply(w, o)
			return
		}
	}
	notFound(w, idOrName)
}

// specItem is a secret or config as the engine lists them.
type specItem struct {
	ID   string
	Spec swarm.Annotations
}

func specs(list []object) []specItem {
	out := []specItem{}
	for _, o := range list {
		out = append(out, specItem{ID: o.ID, Spec: swarm.Annotations{Name: o.Name, Labels: o.Labels}})
	}
	return out
}

func (m *Manager) inspectSpec(w http.ResponseWriter, list []object, idOrName string) {
	for _, o := range list {
		if o.ID == idOrName || o.Name == idOrName {
			reply(w, specItem{ID: o.ID, Spec: swarm.Annotations{Name: o.Name, Labels: o.Labels}})
			return
		}
	}
	notFound(w, idOrName)
}

func (m *Manager) nodes() []swarm.Node {
	out := []swarm.Node{}
	for i, h := range m.hosts {
		n := swarm.Node{ID: "node-" + h, Description: swarm.NodeDescription{Hostname: h}, Status: swarm.NodeStatus{State: swarm.NodeStateReady}}
		n.Spec.Availability = swarm.NodeAvailabilityActive
		n.Spec.Role = swarm.NodeRoleWorker
		if i == 0 {
			n.Spec.Role = swarm.NodeRoleManager
			n.ManagerStatus = &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable}
		}
		out = append(out, n)
	}
	return out
}

// replicas is how many tasks service s runs.
func (m *Manager) replicas(s swarm.Service) int {
	switch {
	case s.Spec.Mode.Global != nil:
		return len(m.hosts)
	case s.Spec.Mode.Replicated != nil && s.Spec.Mode.Replicated.Replicas != nil:
		return int(*s.Spec.Mode.Replicated.Replicas)
	}
	return 1
}

func (m *Manager) withStatus(s swarm.Service) swarm.Service {
	n := uint64(m.replicas(s))
	s.ServiceStatus = &swarm.ServiceStatus{RunningTasks: n, DesiredTasks: n}
	return s
}

// withEndpoint publishes the ports the spec asks for, as given.
func (m *Manager) withEndpoint(s swarm.Service) swarm.Service {
	s.Endpoint = swarm.Endpoint{}
	if s.Spec.EndpointSpec != nil {
		s.Endpoint.Spec = *s.Spec.EndpointSpec
		s.Endpoint.Ports = s.Spec.EndpointSpec.Ports
	}
	return s
}

func (m *Manager) tasks(f filters) []swarm.Task {
	out := []swarm.Task{}
	if len(m.hosts) == 0 {
		return out
	}
	next := 0
	for _, s := range m.services {
		if ids := f["service"]; len(ids) > 0 && !ids[s.ID] && !ids[s.Spec.Name] {
			continue
		}
		for i := range m.replicas(s) {
			host := m.hosts[next%len(m.hosts)]
			next++
			out = append(out, swarm.Task{ID: fmt.Sprintf("%s.%d", s.ID, i+1), ServiceID: s.ID, NodeID: "node-" + host, Slot: i + 1,
				DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}})
		}
	}
	return out
}

// filters are the engine's list filters: {"label": {"k=v": true}}.
type filters map[string]map[string]bool

func parseFilters(s string) filters {
	f := filters{}
	if s != "" {
		json.Unmarshal([]byte(s), &f)
	}
	return f
}

// match reports whether an object of that name, ID and labels passes the
// name, id and label filters.
func (f filters) match(name, id string, labels map[string]string) bool {
	if names := f["name"]; len(names) > 0 && !names[name] {
		return false
	}
	if ids := f["id"]; len(ids) > 0 && !ids[id] {
		return false
	}
	for kv := range f["label"] {
		k, v, hasValue := strings.Cut(kv, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func (f filters) keep(list []object) []object {
	out := []object{}
	for _, o := range list {
		if f.match(o.Name, o.ID, o.Labels) {
			out = append(out, o)
		}
	}
	return out
}
