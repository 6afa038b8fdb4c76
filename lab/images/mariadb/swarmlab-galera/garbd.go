package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// The arbitrator (Galera's garbd) is a member of the cluster that holds no data: it votes in the
// quorum, so that two database members and garbd survive the loss of either database member
// (2 of 3 votes stay: a primary component), where two database members alone would both stop.
// It cannot give state to a joiner, so decide.go never counts it as a running member.
//
// garbd exits when it cannot reach a primary component (at its start, when no database member
// runs), so it runs in a loop here, the peers' names looked up again at each start (their
// addresses change).

// runArbitrator runs garbd (args: "garbd" and options of the user's) until ctx ends or a
// signal comes.
func runArbitrator(ctx context.Context, c Config, args []string) error {
	nets := localNets()
	st := &state{m: Member{Name: c.NodeName, Role: roleArbitrator, Phase: phaseRunning, Seqno: -1}}
	if err := serveStatus(ctx, c.StatusPort, st.get); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts := defaultProviderOptions + "; gmcast.listen_addr=tcp://0.0.0.0:4567"
	if c.ProviderOptions != "" {
		opts += "; " + c.ProviderOptions
	}
	for ctx.Err() == nil {
		peers := resolvePeers(ctx, net.DefaultResolver.LookupHost, c.Peers, localSet(nets))
		if len(peers) == 0 {
			logf("garbd: no member of %s resolves yet", strings.Join(c.Peers, ","))
			sleep(ctx, 2*pollEvery)
			continue
		}
		cmdArgs := append([]string{"--group", c.ClusterName, "--name", c.NodeName,
			"--address", "gcomm://" + strings.Join(peers, ","), "--options", opts}, args[1:]...)
		logf("starting garbd %s", strings.Join(cmdArgs, " "))
		cmd := exec.Command("garbd", cmdArgs...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			logf("garbd ended (%v); starting it again", err)
			sleep(ctx, pollEvery)
		case <-ctx.Done():
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
