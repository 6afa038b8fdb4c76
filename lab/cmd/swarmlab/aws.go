package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/swarmlab/swarmlab/lab/aws"
)

// cmdAws provisions a topology's nodes on EC2 (aws up) and removes them
// (aws down).
func cmdAws(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("aws needs a subcommand: up or down")
	}
	switch args[0] {
	case "up":
		return cmdAwsUp(ctx, args[1:], stdout, stderr)
	case "down":
		return cmdAwsDown(ctx, args[1:], stdout, stderr)
	}
	return usagef("unknown aws subcommand %q (want up or down)", args[0])
}

func cmdAwsUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aws up", flag.ContinueOnError)
	region := fs.String("region", "", "AWS region (default: AWS_REGION or the profile's)")
	var spec aws.Spec
	fs.StringVar(&spec.CIDR, "cidr", "", "who may reach SSH and the app ports, e.g. your public IP as 203.0.113.7/32 (required)")
	fs.StringVar(&spec.KeyName, "key-name", "", "EC2 key pair to log in with (required)")
	fs.StringVar(&spec.InstanceType, "instance-type", aws.DefaultInstanceType, "EC2 instance type of every node")
	fs.StringVar(&spec.Image, "ami", aws.DebianImage, "AMI ID, or SSM parameter path naming one")
	fs.StringVar(&spec.User, "user", aws.DefaultUser, "login user of the AMI")
	fs.StringVar(&spec.VPCID, "vpc-id", "", "existing VPC to use (with --subnet-id) instead of creating one")
	fs.StringVar(&spec.SubnetID, "subnet-id", "", "existing public subnet of --vpc-id")
	identity := fs.String("identity-file", "", "private key of --key-name (default ~/.ssh/KEY-NAME.pem)")
	out := fs.String("out", "", "ssh topology to write (default: TOPOLOGY's directory, NAME-aws.yaml)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("aws up takes one topology")
	}
	path := topologyPath(pos[0])
	t, err := loadTopology(path, stderr)
	if err != nil {
		return err
	}
	ssh := aws.SSHSpec{IdentityFile: *identity, Out: *out}
	if ssh.Out == "" {
		ssh.Out = filepath.Join(filepath.Dir(path), t.Name+"-aws.yaml")
	}
	if ssh.IdentityFile == "" && spec.KeyName != "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("no home directory for the default --identity-file: %v", err)
		}
		ssh.IdentityFile = filepath.Join(home, ".ssh", spec.KeyName+".pem")
	}
	res, err := aws.Up(ctx, t, spec, ssh, aws.Options{Region: *region, Out: stdout})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nStack %s is up in %s:\n", res.StackName, res.Region)
	for _, n := range res.Nodes {
		fmt.Fprintf(stdout, "  %-12s %-8s %s  public %-15s private %s\n", n.Node, n.Role, n.ID, n.PublicIP, n.PrivateIP)
	}
	fmt.Fprintf(stdout, "Wrote %s (host keys in %s).\n", res.Topology, res.KnownHosts)
	fmt.Fprintf(stdout, "Form the swarm on them:\n  scripts/swarmlab up %s\n", res.Topology)
	fmt.Fprintf(stdout, "The instances cost money until you run:\n  scripts/swarmlab aws down %s\n", path)
	return nil
}

func cmdAwsDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aws down", flag.ContinueOnError)
	region := fs.String("region", "", "AWS region (default: AWS_REGION or the profile's)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("aws down takes one topology")
	}
	t, err := loadTopology(topologyPath(pos[0]), stderr)
	if err != nil {
		return err
	}
	res, err := aws.Down(ctx, t.Name, aws.Options{Region: *region, Out: stdout})
	if err != nil {
		return err
	}
	if !res.Existed {
		fmt.Fprintf(stdout, "Stack %s does not exist; nothing to delete.\n", res.StackName)
		return nil
	}
	fmt.Fprintf(stdout, "Deleted stack %s and everything it created.\n", res.StackName)
	return nil
}
