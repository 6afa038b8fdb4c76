package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// Timeout and poll interval of the stack waits, tuned to what AWS does: a
// stack whose instances install Docker takes some 3–6 minutes, deletion
// 1–3; the wait conditions give up on their own after DockerReadyTimeout.
const (
	StackTimeout = 30 * time.Minute
	PollInterval = 10 * time.Second
)

// ErrNoCredentials is returned when the default credential chain finds none.
var ErrNoCredentials = errors.New("no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")

// Options say how Up and Down reach AWS and report progress. The zero value
// loads the default configuration and uses the constants above.
type Options struct {
	// Region overrides the configured region.
	Region string
	// Config, if set, is used instead of loading the default chain (tests
	// point it at a local endpoint with BaseEndpoint).
	Config *aws.Config
	// Out receives progress lines; nil discards them.
	Out io.Writer

	PollInterval, StackTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.PollInterval == 0 {
		o.PollInterval = PollInterval
	}
	if o.StackTimeout == 0 {
		o.StackTimeout = StackTimeout
	}
}

// LoadConfig loads the default AWS configuration (environment, shared
// files, SSO, instance role) and makes sure it has a region and
// credentials, so a missing one is reported before anything is sent.
func LoadConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %s", oneLine(err))
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, ErrNoCredentials
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region set (use --region or set AWS_REGION)")
	}
	return cfg, nil
}

func (o *Options) config(ctx context.Context) (aws.Config, error) {
	if o.Config != nil {
		cfg := o.Config.Copy()
		if o.Region != "" {
			cfg.Region = o.Region
		}
		return cfg, nil
	}
	return LoadConfig(ctx, o.Region)
}

// UpResult is what Up made.
type UpResult struct {
	StackName string
	Region    string
	Nodes     []Instance
	// Topology and KnownHosts are the files written.
	Topology, KnownHosts string
}

// Instance is one node's EC2 instance.
type Instance struct {
	Node, Role          string
	ID                  string
	PublicIP, PrivateIP string
	HostKeys            []string // known_hosts lines
}

// SSHSpec is how the written ssh topology logs in.
type SSHSpec struct {
	// IdentityFile is the private key of Spec.KeyName.
	IdentityFile string
	// Out is the ssh topology to write; KnownHosts defaults to Out with the
	// extension .known_hosts.
	Out, KnownHosts string
}

// Up creates (or reuses a complete) stack for t, waits for it, reads the
// instances' addresses and SSH host keys from its outputs, and writes the
// ssh topology and its known_hosts file.
func Up(ctx context.Context, t *topology.Topology, spec Spec, ssh SSHSpec, opts Options) (*UpResult, error) {
	opts.defaults()
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if ssh.Out == "" || ssh.IdentityFile == "" {
		return nil, errors.New("the output topology and the identity file must be set")
	}
	if ssh.KnownHosts == "" {
		ssh.KnownHosts = strings.TrimSuffix(ssh.Out, filepath.Ext(ssh.Out)) + ".known_hosts"
	}
	ports, err := PublishedPorts(t)
	if err != nil {
		return nil, err
	}
	plan, err := NewPlan(t, spec, ports)
	if err != nil {
		return nil, err
	}
	cfg, err := opts.config(ctx)
	if err != nil {
		return nil, err
	}
	// Checked before anything is created: without the key the instances
	// would cost money and be unreachable.
	if _, err := os.Stat(ssh.IdentityFile); err != nil {
		return nil, fmt.Errorf("identity file %s (the private key of key pair %q; set --identity-file): %v", ssh.IdentityFile, spec.KeyName, errors.Unwrap(err))
	}
	cf := cloudformation.NewFromConfig(cfg)

	fmt.Fprintf(opts.Out, "Creating CloudFormation stack %s in %s: %d %s instances, SSH and ports %s open to %s\n",
		plan.StackName, cfg.Region, len(plan.Nodes), spec.InstanceType, portList(ports), spec.CIDR)
	stackID, err := createStack(ctx, cf, plan, opts.Out)
	if err != nil {
		return nil, err
	}
	st, err := waitStack(ctx, cf, plan.StackName, stackID, createGoal, opts)
	if err != nil {
		return nil, err
	}
	res := &UpResult{StackName: plan.StackName, Region: cfg.Region, Topology: ssh.Out, KnownHosts: ssh.KnownHosts}
	outputs := map[string]string{}
	for _, o := range st.Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	for _, n := range plan.Nodes {
		in := Instance{Node: n.Name, Role: n.Role, ID: outputs[n.ID+"InstanceId"],
			PublicIP: outputs[n.ID+"PublicIp"], PrivateIP: outputs[n.ID+"PrivateIp"]}
		if in.ID == "" || in.PublicIP == "" || in.PrivateIP == "" || outputs[n.ID+"HostKeys"] == "" {
			return nil, fmt.Errorf("stack %s has no complete outputs for node %s (want %[3]sInstanceId, %[3]sPublicIp, %[3]sPrivateIp, %[3]sHostKeys; got %[4]v)",
				plan.StackName, n.Name, n.ID, slices.Sorted(maps.Keys(outputs)))
		}
		if in.HostKeys, err = hostKeyLines(n.Name, outputs[n.ID+"HostKeys"], in.PublicIP); err != nil {
			return nil, err
		}
		res.Nodes = append(res.Nodes, in)
	}

	if err := writeFiles(t, plan, spec, ssh, res); err != nil {
		return nil, err
	}
	return res, nil
}

func portList(ports []Port) string {
	s := []string{"22/tcp"}
	for _, p := range ports {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// createStack creates the stack, or returns the ID of an existing one that
// is complete (so `aws up` run twice rewrites the topology).
func createStack(ctx context.Context, cf *cloudformation.Client, plan *Plan, out io.Writer) (string, error) {
	created, err := cf.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName:    aws.String(plan.StackName),
		TemplateBody: aws.String(string(plan.Template)),
		Tags:         []cftypes.Tag{{Key: aws.String(TagLab), Value: aws.String(plan.Lab)}},
	})
	if err == nil {
		return aws.ToString(created.StackId), nil
	}
	var exists *cftypes.AlreadyExistsException
	if !errors.As(err, &exists) {
		return "", fmt.Errorf("creating stack %s: %s", plan.StackName, oneLine(err))
	}
	st, err := describeStack(ctx, cf, plan.StackName)
	if err != nil {
		return "", err
	}
	switch st.StackStatus {
	case cftypes.StackStatusCreateComplete, cftypes.StackStatusUpdateComplete:
		fmt.Fprintf(out, "Stack %s already exists (%s); using it\n", plan.StackName, st.StackStatus)
		return aws.ToString(st.StackId), nil
	}
	return "", fmt.Errorf("stack %s already exists in state %s; delete it with `swarmlab aws down %s` and try again",
		plan.StackName, st.StackStatus, plan.Lab)
}

// errNoStack is returned by describeStack for a stack that does not exist.
var errNoStack = errors.New("stack does not exist")

func describeStack(ctx context.Context, cf *cloudformation.Client, nameOrID string) (*cftypes.Stack, error) {
	out, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(nameOrID)})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "ValidationError" && strings.Contains(api.ErrorMessage(), "does not exist") {
			return nil, errNoStack
		}
		return nil, fmt.Errorf("describing stack %s: %s", nameOrID, oneLine(err))
	}
	if len(out.Stacks) == 0 {
		return nil, errNoStack
	}
	return &out.Stacks[0], nil
}

// goal says which stack statuses end a wait, and how.
type goal struct {
	verb string // "created", "deleted"
	done cftypes.StackStatus
	// failed statuses end the wait with the failing resource's reason.
	failed []cftypes.StackStatus
}

var (
	createGoal = goal{verb: "created", done: cftypes.StackStatusCreateComplete, failed: []cftypes.StackStatus{
		cftypes.StackStatusCreateFailed, cftypes.StackStatusRollbackComplete, cftypes.StackStatusRollbackFailed,
		cftypes.StackStatusDeleteInProgress, cftypes.StackStatusDeleteComplete, cftypes.StackStatusDeleteFailed,
	}}
	deleteGoal = goal{verb: "deleted", done: cftypes.StackStatusDeleteComplete, failed: []cftypes.StackStatus{
		cftypes.StackStatusDeleteFailed,
	}}
)

// waitStack polls the stack until it reaches g.done, printing each new event
// as it comes. A stack that no longer exists counts as deleted.
func waitStack(ctx context.Context, cf *cloudformation.Client, name, id string, g goal, opts Options) (*cftypes.Stack, error) {
	seen := map[string]bool{}
	var final *cftypes.Stack
	what := fmt.Sprintf("CloudFormation stack %s to be %s (%s)", name, g.verb, g.done)
	var lastSeen string
	_, err := wait.For(ctx, what, opts.StackTimeout, opts.PollInterval, func(ctx context.Context) wait.Result {
		fail := func(err error) wait.Result {
			if ctx.Err() != nil {
				// The wait ran out during a call: report what was seen
				// before, not the cancelled call.
				return wait.Continue("%s", lastSeen)
			}
			return wait.Fail(err)
		}
		st, err := describeStack(ctx, cf, id)
		if errors.Is(err, errNoStack) && g.done == cftypes.StackStatusDeleteComplete {
			return wait.Done("stack is gone")
		}
		if err != nil {
			return fail(err)
		}
		events, err := stackEvents(ctx, cf, id)
		if err != nil {
			return fail(err)
		}
		for i := len(events) - 1; i >= 0; i-- { // oldest first
			if e := events[i]; !seen[aws.ToString(e.EventId)] {
				seen[aws.ToString(e.EventId)] = true
				fmt.Fprintf(opts.Out, "  %s\n", eventLine(e))
			}
		}
		last := "none yet"
		if len(events) > 0 {
			last = eventLine(events[0])
		}
		status := st.StackStatus
		switch {
		case status == g.done:
			final = st
			return wait.Done(string(status))
		case slices.Contains(g.failed, status):
			return wait.Fail(stackFailure(name, st, events, g))
		}
		lastSeen = fmt.Sprintf("stack status %s; last event: %s", status, last)
		return wait.Continue("%s", lastSeen)
	})
	return final, err
}

// stackEvents returns all events of the stack, newest first.
func stackEvents(ctx context.Context, cf *cloudformation.Client, id string) ([]cftypes.StackEvent, error) {
	var events []cftypes.StackEvent
	p := cloudformation.NewDescribeStackEventsPaginator(cf, &cloudformation.DescribeStackEventsInput{StackName: aws.String(id)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the events of stack %s: %s", id, oneLine(err))
		}
		events = append(events, page.StackEvents...)
	}
	return events, nil
}

func eventLine(e cftypes.StackEvent) string {
	s := fmt.Sprintf("%s %s", aws.ToString(e.LogicalResourceId), e.ResourceStatus)
	if r := aws.ToString(e.ResourceStatusReason); r != "" {
		s += ": " + r
	}
	return s
}

// stackFailure explains a failed stack with the first resource that failed:
// later failures are mostly "Resource creation cancelled" consequences.
func stackFailure(name string, st *cftypes.Stack, events []cftypes.StackEvent, g goal) error {
	var cause *cftypes.StackEvent
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if !strings.HasSuffix(string(e.ResourceStatus), "_FAILED") || aws.ToString(e.LogicalResourceId) == name {
			continue
		}
		if strings.Contains(aws.ToString(e.ResourceStatusReason), "Resource creation cancelled") {
			continue
		}
		cause = &events[i]
		break
	}
	why := aws.ToString(st.StackStatusReason)
	if cause != nil {
		why = fmt.Sprintf("%s (%s) %s: %s", aws.ToString(cause.LogicalResourceId), aws.ToString(cause.ResourceType),
			cause.ResourceStatus, aws.ToString(cause.ResourceStatusReason))
	}
	msg := fmt.Sprintf("stack %s was not %s: it is %s; first failure: %s", name, g.verb, st.StackStatus, why)
	if g.verb == "created" {
		msg += fmt.Sprintf("; delete what is left with `swarmlab aws down %s`", strings.TrimPrefix(name, "swarmlab-"))
	}
	return errors.New(msg)
}

// DownResult is what Down did.
type DownResult struct {
	StackName string
	Existed   bool
}

// Down deletes the stack of lab and waits until it is gone.
func Down(ctx context.Context, lab string, opts Options) (*DownResult, error) {
	opts.defaults()
	cfg, err := opts.config(ctx)
	if err != nil {
		return nil, err
	}
	cf := cloudformation.NewFromConfig(cfg)
	name := StackName(lab)
	res := &DownResult{StackName: name}
	st, err := describeStack(ctx, cf, name)
	if errors.Is(err, errNoStack) {
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res.Existed = true
	id := aws.ToString(st.StackId)
	fmt.Fprintf(opts.Out, "Deleting CloudFormation stack %s in %s (%s)\n", name, cfg.Region, st.StackStatus)
	if _, err := cf.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(id)}); err != nil {
		return nil, fmt.Errorf("deleting stack %s: %s", name, oneLine(err))
	}
	if _, err := waitStack(ctx, cf, name, id, deleteGoal, opts); err != nil {
		return nil, err
	}
	return res, nil
}

// oneLine folds an SDK error (which may span lines) onto one line.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// writeFile writes data to path through a temporary file, so a reader never
// sees half a topology.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
