// Package engine connects to Docker engines — the host's and each node's —
// through the one Docker client the project uses, and runs commands in
// containers. Everything above the providers talks to engines only.
package engine

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// Connect returns a client for the engine at host (for example
// "tcp://127.0.0.1:32771"), with the API version negotiated on the first
// call. It does not contact the engine; use Ping for that.
func Connect(host string) (*client.Client, error) {
	c, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", host, err)
	}
	return c, nil
}

// FromEnv returns a client for the engine named by DOCKER_HOST (and the other
// DOCKER_* variables), or the default socket.
func FromEnv() (*client.Client, error) {
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client from environment: %w", err)
	}
	return c, nil
}

// Ping checks that the engine answers and negotiates the API version. It
// returns the negotiated version.
func Ping(ctx context.Context, c client.APIClient) (string, error) {
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return "", err
	}
	return c.ClientVersion(), nil
}

// ExecResult is the outcome of a command run in a container.
type ExecResult = common.ExecResult

// Exec runs cmd in container and waits for it to finish.
func Exec(ctx context.Context, c client.APIClient, container string, cmd ...string) (ExecResult, error) {
	created, err := c.ExecCreate(ctx, container, client.ExecCreateOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %q in %s: %w", strings.Join(cmd, " "), container, err)
	}
	att, err := c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %q in %s: %w", strings.Join(cmd, " "), container, err)
	}
	defer att.Close()
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, att.Reader); err != nil {
		return ExecResult{}, fmt.Errorf("exec %q in %s: reading output: %w", strings.Join(cmd, " "), container, err)
	}
	ins, err := c.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %q in %s: %w", strings.Join(cmd, " "), container, err)
	}
	return ExecResult{ExitCode: ins.ExitCode, Stdout: out.String(), Stderr: errb.String()}, nil
}
