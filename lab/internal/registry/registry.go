// Package registry copies images from the host engine into a lab's registry,
// so that nodes — which cannot reach any public registry here — pull them
// by their usual names.
package registry

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// noAuth is an empty, base64-encoded auth config: the lab registry has no
// auth, but the engine rejects a push that carries no auth header at all.
const noAuth = "e30="

// Push copies the local image ref into the registry at addr ("host:port"
// reachable by the host engine) under each target name, e.g.
// "library/redis:latest". Layers already in the registry are not sent again.
func Push(ctx context.Context, host client.APIClient, addr, local string, targets ...string) error {
	for _, target := range targets {
		remote := addr + "/" + target
		if _, err := host.ImageTag(ctx, client.ImageTagOptions{Source: local, Target: remote}); err != nil {
			return fmt.Errorf("tagging %s as %s: %w", local, remote, err)
		}
		err := push(ctx, host, remote)
		// The temporary tag is only a name for the push; drop it either way.
		if _, rmErr := host.ImageRemove(ctx, remote, client.ImageRemoveOptions{}); rmErr != nil && !cerrdefs.IsNotFound(rmErr) && err == nil {
			err = fmt.Errorf("removing temporary tag %s: %w", remote, rmErr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func push(ctx context.Context, host client.APIClient, remote string) error {
	resp, err := host.ImagePush(ctx, remote, client.ImagePushOptions{RegistryAuth: noAuth})
	if err != nil {
		return fmt.Errorf("pushing %s: %w", remote, err)
	}
	var last string
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pushing %s: %w", remote, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("pushing %s: %s", remote, msg.Error.Message)
		}
		if msg.Status != "" {
			last = msg.Status
		}
	}
	if strings.Contains(last, "denied") {
		return fmt.Errorf("pushing %s: %s", remote, last)
	}
	return nil
}

// Name turns a public image name into the repository path a registry
// mirror serves it under: "redis:7" -> "library/redis:7",
// "bitnami/redis:7" -> "bitnami/redis:7".
func Name(public string) string {
	repo := public
	if i := strings.LastIndex(public, ":"); i > strings.LastIndex(public, "/") {
		repo = public[:i]
	}
	if !strings.Contains(repo, "/") {
		return "library/" + public
	}
	return public
}
