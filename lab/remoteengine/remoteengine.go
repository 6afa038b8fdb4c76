// Package remoteengine starts a Docker engine that is not on this machine's
// network, to run the lab against as a user of Docker Desktop, a remote
// build box or a CI job's docker:dind sidecar would: a container made from
// the lab's own node image, with its dockerd on tcp 2375. The test process
// reaches that engine at its own address only; nothing on the engine's
// bridge networks (where the lab's nodes live) is routable from here, and
// its loopback is not this machine's.
package remoteengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// Label marks everything a remote engine is made of; its value is the name.
const Label = "io.swarmlab.remote-engine"

// ReadyTimeout bounds the wait for the engine's dockerd to answer.
const ReadyTimeout = 2 * time.Minute

func containerName(name string) string { return "swarmlab-remote-" + name }

// Engine is a started remote engine.
type Engine struct {
	Name string
	// DockerHost drives it: "tcp://<its bridge address>:2375".
	DockerHost string
}

// Start starts the engine and copies the lab's images into it (logging
// what it does to logf), so that a lab comes up there as it does here. On
// error, what it made is removed.
func Start(ctx context.Context, host client.APIClient, name string, logf func(string, ...any)) (e *Engine, err error) {
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			err = errors.Join(err, Remove(cctx, host, name))
		}
	}()
	labels := map[string]string{Label: name}
	cname := containerName(name)
	if _, err := host.NetworkCreate(ctx, cname, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		return nil, fmt.Errorf("creating network %s: %w", cname, err)
	}
	vol := cname + "-docker"
	if _, err := host.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol, Labels: labels}); err != nil {
		return nil, fmt.Errorf("creating volume %s: %w", vol, err)
	}
	img, err := images.NodeFor(images.DefaultEngine)
	if err != nil {
		return nil, err
	}
	nodeImage, err := images.Resolve(ctx, host, img)
	if err != nil {
		return nil, err
	}
	info, err := host.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, err
	}
	hc := &container.HostConfig{}
	common.NodeHostConfig(hc, common.PreferPrivileged(func() string { return info.Info.CgroupVersion }), vol)
	created, err := host.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:             cname,
		Config:           &container.Config{Image: nodeImage, Hostname: "remote-" + name, Labels: labels},
		HostConfig:       hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{cname: {}}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating engine container %s: %w", cname, err)
	}
	if _, err := host.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("starting engine container %s: %w", cname, err)
	}
	ins, err := host.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	ep := ins.Container.NetworkSettings.Networks[cname]
	if ep == nil || !ep.IPAddress.IsValid() {
		return nil, fmt.Errorf("engine container %s has no address on network %s", cname, cname)
	}
	e = &Engine{Name: name, DockerHost: "tcp://" + net.JoinHostPort(ep.IPAddress.String(), "2375")}
	remote, err := engine.Connect(e.DockerHost)
	if err != nil {
		return nil, err
	}
	defer remote.Close()
	if _, err := wait.For(ctx, "the engine in "+cname+" to answer at "+e.DockerHost, ReadyTimeout, 200*time.Millisecond, func(ctx context.Context) wait.Result {
		ins, err := host.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
		if err == nil && !ins.Container.State.Running {
			return wait.Fail(fmt.Errorf("engine container %s exited with code %d (see docker logs %s)", cname, ins.Container.State.ExitCode, cname))
		}
		if _, err := engine.Ping(ctx, remote); err != nil {
			return wait.Continue("%v", err)
		}
		return wait.Done("answers")
	}); err != nil {
		return nil, err
	}
	t0 := time.Now()
	refs, err := labImages(ctx, host)
	if err != nil {
		return nil, err
	}
	if err := Copy(ctx, host, remote, refs); err != nil {
		return nil, err
	}
	logf("copied %d images into %s in %.1fs: %s", len(refs), cname, time.Since(t0).Seconds(), strings.Join(refs, " "))
	return e, nil
}

// labImages lists the local references of the images a docker lab's
// bring-up checks for: the node image of the engine its nodes run
// (SWARMLAB_ENGINE, else the default), the registry and the standard images.
// The bases they were built on and the ssh provider's host image are not
// needed there (a lab builds only what it lacks), and leaving them out
// halves what is copied.
func labImages(ctx context.Context, host client.APIClient) ([]string, error) {
	node, err := images.NodeFor(os.Getenv("SWARMLAB_ENGINE"))
	if err != nil {
		return nil, fmt.Errorf("SWARMLAB_ENGINE: %w", err)
	}
	var refs []string
	for _, img := range append([]images.Image{node, images.Registry()}, images.Standard()...) {
		ref, err := images.Resolve(ctx, host, img)
		if err != nil {
			return nil, err
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// Copy streams refs from one engine to another (docker save | docker load).
func Copy(ctx context.Context, from, to client.APIClient, refs []string) error {
	saved, err := from.ImageSave(ctx, refs)
	if err != nil {
		return fmt.Errorf("saving %s: %w", strings.Join(refs, " "), err)
	}
	defer saved.Close()
	loaded, err := to.ImageLoad(ctx, saved, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("loading images into the remote engine: %w", err)
	}
	defer loaded.Close()
	out, err := io.ReadAll(loaded)
	if err != nil {
		return fmt.Errorf("loading images into the remote engine: %w", err)
	}
	if strings.Contains(string(out), `"error"`) {
		return fmt.Errorf("loading images into the remote engine: %s", strings.TrimSpace(string(out)))
	}
	return nil
}

// Remove removes the named engine's container, volume and network.
func Remove(ctx context.Context, host client.APIClient, name string) error {
	return engine.RemoveLabelled(ctx, host, make(client.Filters).Add("label", Label+"="+name))
}
