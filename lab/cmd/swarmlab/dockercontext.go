package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
)

// Each lab has a docker context, swarmlab-<name>, that points the docker
// CLI at its manager's engine, as `swarmlab env` does for one shell: up
// writes it, down removes it. It lives in the docker CLI's own context
// store ($DOCKER_CONFIG/contexts, else ~/.docker/contexts).

// contextPrefix begins the name of every lab's context.
const contextPrefix = "swarmlab-"

// contextMark begins the description of every context swarmlab writes:
// down removes only those, never a context of the same name made by hand.
const contextMark = "swarmlab lab "

// contextName is the docker context of lab name.
func contextName(lab string) string { return contextPrefix + lab }

// dockerConfigDir is the docker CLI's configuration directory: DOCKER_CONFIG,
// else ~/.docker.
func dockerConfigDir() (string, error) {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the docker CLI's configuration (set DOCKER_CONFIG): %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// contextMeta is a context's own metadata, as the docker CLI reads it
// (command.DockerContext).
type contextMeta struct {
	Description string `json:",omitempty"`
}

func contextStore() (*store.ContextStore, string, error) {
	dir, err := dockerConfigDir()
	if err != nil {
		return nil, "", err
	}
	cfg := store.NewConfig(func() any { return &contextMeta{} },
		store.EndpointTypeGetter(docker.DockerEndpoint, func() any { return &docker.EndpointMeta{} }))
	return store.New(filepath.Join(dir, "contexts"), cfg), dir, nil
}

// writeContext writes (or rewrites) lab's docker context, pointing at the
// engine at host (a DOCKER_HOST value); what names the engine for people
// ("its manager m1").
func writeContext(lab, host, what string) (string, error) {
	name := contextName(lab)
	if err := store.ValidateContextName(name); err != nil {
		return name, err
	}
	s, _, err := contextStore()
	if err != nil {
		return name, err
	}
	return name, s.CreateOrUpdate(store.Metadata{
		Name:      name,
		Metadata:  contextMeta{Description: contextMark + lab + ": " + what},
		Endpoints: map[string]any{docker.DockerEndpoint: docker.EndpointMeta{Host: host}},
	})
}

// contextHost is the engine lab's context points at; "" when it has none.
func contextHost(lab string) (string, error) {
	s, _, err := contextStore()
	if err != nil {
		return "", err
	}
	md, err := s.GetMetadata(contextName(lab))
	if errdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	ep, err := docker.EndpointFromContext(md)
	if err != nil {
		return "", err
	}
	return ep.Host, nil
}

// removeContext removes lab's docker context, if swarmlab wrote it; if it
// was the docker CLI's current context, the current one is the default
// again (as `docker context rm --force` does). It returns whether there was
// one to remove.
func removeContext(lab string) (bool, error) {
	s, dir, err := contextStore()
	if err != nil {
		return false, err
	}
	name := contextName(lab)
	md, err := s.GetMetadata(name)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !ours(md) {
		return false, nil
	}
	if err := s.Remove(name); err != nil {
		return false, err
	}
	return true, unsetCurrentContext(dir, name)
}

// removeAllContexts removes every docker context swarmlab wrote, also of
// labs that are gone, and returns their names.
func removeAllContexts() ([]string, error) {
	s, dir, err := contextStore()
	if err != nil {
		return nil, err
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, md := range all {
		if !strings.HasPrefix(md.Name, contextPrefix) || !ours(md) {
			continue
		}
		if err := s.Remove(md.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, md.Name)
		errs = append(errs, unsetCurrentContext(dir, md.Name))
	}
	return removed, errors.Join(errs...)
}

// ours reports whether swarmlab wrote the context (the store gives back its
// metadata as the value contextStore's config types it).
func ours(md store.Metadata) bool {
	m, ok := md.Metadata.(contextMeta)
	return ok && strings.HasPrefix(m.Description, contextMark)
}

// unsetCurrentContext drops currentContext from the docker CLI's
// config.json in dir where it names name, and leaves every other field as
// it is.
func unsetCurrentContext(dir, name string) error {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var current string
	if raw, ok := cfg["currentContext"]; !ok || json.Unmarshal(raw, &current) != nil || current != name {
		return nil
	}
	delete(cfg, "currentContext")
	out, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".swarmlab-tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
