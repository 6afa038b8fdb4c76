package lab

import (
	"context"
	"maps"

	composetypes "github.com/docker/cli/cli/compose/types"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/stack"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// StackOptions tune Stacks.Deploy.
type StackOptions struct {
	// Env adds variables the stack file may interpolate; they win over
	// the lab's (Stacks.Env, the images, the secrets), and the process
	// environment comes after all of them.
	Env map[string]string
	// Detach returns once the deploy call is done, without waiting for the
	// services to run their tasks (stack.Converged tells when they do),
	// as `docker stack deploy --detach` does.
	Detach bool
}

// Stack is a stack Stacks.Deploy deployed.
type Stack struct {
	Name string
	// Images are the images the stack file declares (x-swarmlab), by name
	// ("echo"), as nodes pull them: built from the Go source, tagged by
	// content hash, in the lab registry. Each is pushed as
	// swarmlab/<name>:latest too, so a person can name it without the hash
	// (docker service update --image registry:5000/swarmlab/echo:latest).
	Images map[string]string
	// Env is what the stack file was interpolated with.
	Env map[string]string
	// Warnings are what the image check could not settle: an image of a
	// registry other than the lab's, a lab registry that could not be
	// asked. They do not stop the deploy.
	Warnings []string
}

// Stacks deploys stacks on a lab, and the images they run: it builds
// them on the host and pushes them into the lab's registry.
type Stacks struct{ l *Lab }

// Stacks returns what deploys stacks and images on the lab.
func (l *Lab) Stacks() Stacks { return Stacks{l} }

// Deploy deploys the compose file at path as stack name through a
// manager of the lab, as the lab deploys a topology's stacks: it builds the
// images the file declares (x-swarmlab) on the host and pushes them to the
// lab registry, makes the secrets it asks for (once per lab: see
// Secrets.Generate), reads the file with Env, the images and the
// secrets, and creates or updates its networks, secrets, configs and
// services. Before anything reaches the swarm, it checks that the nodes can
// get every image the services ask for (see checkStackImages): if not, it
// fails with one line per missing image, and deploys nothing. Then it
// waits, for up to StackTimeout, until every service runs all its tasks,
// unless opts.Detach.
func (s Stacks) Deploy(ctx context.Context, name, path string, opts StackOptions) (*Stack, error) {
	l := s.l
	specs, err := stackImageSpecs(path)
	if err != nil {
		return nil, err
	}
	imgs := make([]*stackImage, len(specs))
	for i := range specs {
		imgs[i] = &specs[i]
	}
	st, cfg, err := l.prepareStack(ctx, name, path, imgs, false, 0, opts.Env)
	if err != nil {
		return st, err
	}
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		return st, err
	}
	if err := l.deployStack(ctx, mgr, name, cfg); err != nil {
		return st, err
	}
	if opts.Detach {
		return st, nil
	}
	return st, waitStack(ctx, mgr, name)
}

// prepareStack makes what the stack file at path needs before it can be
// deployed as stack name: its images (built at most buildLimit at once and
// pushed, unless built already) and its secrets. It returns the file read
// with Stacks.Env, the images, the secrets and extra, in that order, once
// checkStackImages found every image it asks for; the Stack it returns on
// that check's error carries the check's warnings.
func (l *Lab) prepareStack(ctx context.Context, name, path string, imgs []*stackImage, built bool, buildLimit int, extra map[string]string) (*Stack, *composetypes.Config, error) {
	if !built {
		if err := l.buildImages(ctx, imgs, buildLimit); err != nil {
			return nil, nil, err
		}
		if err := l.pushImages(ctx, imgs); err != nil {
			return nil, nil, err
		}
	}
	var secrets map[string]string
	if err := subStep(ctx, "secrets "+name, func() (err error) {
		secrets, err = l.Secrets().Generate(ctx, path)
		return err
	}); err != nil {
		return nil, nil, err
	}
	env := l.Stacks().Env()
	maps.Copy(env, l.imageEnv(imgs))
	maps.Copy(env, secrets)
	maps.Copy(env, extra)
	cfg, err := stack.Load(path, env)
	if err != nil {
		return nil, nil, err
	}
	st := &Stack{Name: name, Env: env, Images: map[string]string{}}
	own := map[string]string{}
	for _, img := range imgs {
		st.Images[img.name] = env[stack.ImageEnv(img.name)]
		own[st.Images[img.name]] = img.name
	}
	st.Warnings, err = l.checkStackImages(ctx, name, cfg, own)
	if err != nil {
		return st, nil, err
	}
	return st, cfg, nil
}

// deployStack is the deploy call, timed as a part of the step in ctx.
func (l *Lab) deployStack(ctx context.Context, mgr client.APIClient, name string, cfg *composetypes.Config) error {
	return subStep(ctx, "deploy call "+name, func() error { return stack.Deploy(ctx, mgr, name, cfg) })
}

// waitStack waits until every service of stack name runs all its tasks,
// timed as a part of the step in ctx.
func waitStack(ctx context.Context, mgr client.APIClient, name string) error {
	return subStep(ctx, "converge "+name, func() error {
		_, err := wait.For(ctx, "stack "+name+" to run all its tasks", StackTimeout, convergePoll, stack.Converged(mgr, name))
		return err
	})
}
