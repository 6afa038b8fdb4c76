// Package stack deploys compose files as swarm stacks, the way
// `docker stack deploy` does, through the engine API: docker/cli's compose
// loader and converter turn the file into swarm objects, and this package
// creates or updates them. A stack file is a standard compose v3 file that
// `docker stack deploy` can read as well.
package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/compose/convert"
	"github.com/docker/cli/cli/compose/loader"
	composetypes "github.com/docker/cli/cli/compose/types"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/wait"
)

// Load reads a compose file, interpolating ${VARS} from env (and then from
// the process environment).
func Load(path string, env map[string]string) (*composetypes.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading stack file: %w", err)
	}
	dict, err := loader.ParseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	environ := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			environ[k] = v
		}
	}
	for k, v := range env {
		environ[k] = v
	}
	abs, _ := filepath.Abs(path)
	cfg, err := loader.Load(composetypes.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []composetypes.ConfigFile{{Filename: abs, Config: dict}},
		Environment: environ,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Deploy creates or updates the stack name from cfg through mgr: networks,
// secrets, configs, then services. Images are used as written (no registry
// lookup to pin digests: the lab registry is the only one there is).
func Deploy(ctx context.Context, mgr client.APIClient, name string, cfg *composetypes.Config) error {
	ns := convert.NewNamespace(name)

	declared := map[string]struct{}{}
	for _, s := range cfg.Services {
		if len(s.Networks) == 0 {
			declared["default"] = struct{}{}
		}
		for n := range s.Networks {
			declared[n] = struct{}{}
		}
	}
	networks, external := convert.Networks(ns, cfg.Networks, declared)
	for _, n := range external {
		if _, err := mgr.NetworkInspect(ctx, n, client.NetworkInspectOptions{}); err != nil {
			return fmt.Errorf("stack %s: external network %s: %w", name, n, err)
		}
	}
	existing, err := mgr.NetworkList(ctx, client.NetworkListOptions{Filters: stackFilter(name)})
	if err != nil {
		return fmt.Errorf("stack %s: listing networks: %w", name, err)
	}
	have := map[string]bool{}
	for _, n := range existing.Items {
		have[n.Name] = true
	}
	for _, n := range sortedKeys(networks) {
		if have[n] {
			continue
		}
		opts := networks[n]
		if opts.Driver == "" {
			opts.Driver = "overlay"
		}
		if _, err := mgr.NetworkCreate(ctx, n, opts); err != nil {
			return fmt.Errorf("stack %s: creating network %s: %w", name, n, err)
		}
	}

	secrets, err := convert.Secrets(ns, cfg.Secrets)
	if err != nil {
		return fmt.Errorf("stack %s: %w", name, err)
	}
	for _, s := range secrets {
		if err := upsertSecret(ctx, mgr, s); err != nil {
			return fmt.Errorf("stack %s: %w", name, err)
		}
	}
	configs, err := convert.Configs(ns, cfg.Configs)
	if err != nil {
		return fmt.Errorf("stack %s: %w", name, err)
	}
	for _, c := range configs {
		if err := upsertConfig(ctx, mgr, c); err != nil {
			return fmt.Errorf("stack %s: %w", name, err)
		}
	}

	specs, err := convert.Services(ctx, ns, cfg, mgr)
	if err != nil {
		return fmt.Errorf("stack %s: %w", name, err)
	}
	running, err := mgr.ServiceList(ctx, client.ServiceListOptions{Filters: stackFilter(name)})
	if err != nil {
		return fmt.Errorf("stack %s: listing services: %w", name, err)
	}
	byName := map[string]swarm.Service{}
	for _, s := range running.Items {
		byName[s.Spec.Name] = s
	}
	var errs []error
	for _, svc := range sortedKeys(specs) {
		spec := specs[svc]
		if cur, ok := byName[spec.Name]; ok {
			_, err = mgr.ServiceUpdate(ctx, cur.ID, client.ServiceUpdateOptions{Version: cur.Version, Spec: spec})
		} else {
			_, err = mgr.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("stack %s: service %s: %w", name, svc, err))
		}
	}
	return errors.Join(errs...)
}

// Remove deletes the stack's services, then its secrets, configs and
// networks, like `docker stack rm`.
func Remove(ctx context.Context, mgr client.APIClient, name string) error {
	f := stackFilter(name)
	var errs []error
	if svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{Filters: f}); err != nil {
		errs = append(errs, err)
	} else {
		for _, s := range svcs.Items {
			if _, err := mgr.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	if ss, err := mgr.SecretList(ctx, client.SecretListOptions{Filters: f}); err == nil {
		for _, s := range ss.Items {
			mgr.SecretRemove(ctx, s.ID, client.SecretRemoveOptions{})
		}
	}
	if cs, err := mgr.ConfigList(ctx, client.ConfigListOptions{Filters: f}); err == nil {
		for _, c := range cs.Items {
			mgr.ConfigRemove(ctx, c.ID, client.ConfigRemoveOptions{})
		}
	}
	// Networks go last and may still have task endpoints for a moment;
	// a leftover network is harmless and removed with the lab.
	if ns, err := mgr.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range ns.Items {
			mgr.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
		}
	}
	return errors.Join(errs...)
}

func stackFilter(name string) client.Filters {
	return make(client.Filters).Add("label", convert.LabelNamespace+"="+name)
}

// Secrets cannot change in place; an existing one with the same name is kept
// (as `docker stack deploy` does, it would fail to update the data).
func upsertSecret(ctx context.Context, mgr client.APIClient, spec swarm.SecretSpec) error {
	_, err := mgr.SecretInspect(ctx, spec.Name, client.SecretInspectOptions{})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("secret %s: %w", spec.Name, err)
	}
	if _, err := mgr.SecretCreate(ctx, client.SecretCreateOptions{Spec: spec}); err != nil {
		return fmt.Errorf("creating secret %s: %w", spec.Name, err)
	}
	return nil
}

func upsertConfig(ctx context.Context, mgr client.APIClient, spec swarm.ConfigSpec) error {
	_, err := mgr.ConfigInspect(ctx, spec.Name, client.ConfigInspectOptions{})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("config %s: %w", spec.Name, err)
	}
	if _, err := mgr.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: spec}); err != nil {
		return fmt.Errorf("creating config %s: %w", spec.Name, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Converged checks that every service of the stack runs all its desired
// tasks. An empty name checks every service of the swarm.
func Converged(mgr client.APIClient, name string) wait.Check {
	return func(ctx context.Context) wait.Result {
		opts := client.ServiceListOptions{Status: true}
		if name != "" {
			opts.Filters = stackFilter(name)
		}
		svcs, err := mgr.ServiceList(ctx, opts)
		if err != nil {
			return wait.Continue("service list: %v", err)
		}
		if len(svcs.Items) == 0 && name != "" {
			return wait.Continue("no services yet")
		}
		var behind []string
		for _, s := range svcs.Items {
			st := s.ServiceStatus
			if st == nil || st.DesiredTasks == 0 || st.RunningTasks < st.DesiredTasks {
				run, want := uint64(0), uint64(0)
				if st != nil {
					run, want = st.RunningTasks, st.DesiredTasks
				}
				behind = append(behind, fmt.Sprintf("%s %d/%d", s.Spec.Name, run, want))
			}
		}
		sort.Strings(behind)
		if len(behind) == 0 {
			return wait.Done(fmt.Sprintf("%d services running all their tasks", len(svcs.Items)))
		}
		return wait.Continue("waiting for %s", strings.Join(behind, ", "))
	}
}
