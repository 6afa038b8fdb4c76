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
// garbd can only join a primary component (at its start it waits for one, then exits), and one
// left alone when every database member went down is of no use to the cluster they bootstrap
// anew. So garbd runs here in a loop (arbitrate): started once a database member runs in the
// primary component (asked on the status port, the peers' names looked up each time: their
// addresses change), and started again when it ends, or when it outlived every primary member
// (orphaned) and one runs again.

// orphanedAfter is how many looks in a row, a second apart, must find no database member in the
// primary component before garbd counts as orphaned (one slow answer is not a cluster gone).
const orphanedAfter = 3

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
	opts := evsOptions + "; gmcast.listen_addr=tcp://0.0.0.0:4567"
	if c.ProviderOptions != "" {
		opts += "; " + c.ProviderOptions
	}
	// primary returns the addresses of the peers and whether a database member among them runs
	// in the primary component.
	primary := func() ([]string, bool) {
		peers := resolvePeers(ctx, net.DefaultResolver.LookupHost, c.Peers, localSet(nets))
		for _, m := range fetchAll(ctx, peers, c.StatusPort) {
			if m.Role == roleDB && m.Phase == phaseRunning && m.Cluster == "Primary" {
				return peers, true
			}
		}
		return peers, false
	}
	waiting := ""
	for ctx.Err() == nil {
		peers, ok := primary()
		if !ok {
			if say := "garbd: waiting for a database member of " + strings.Join(c.Peers, ",") + " to run in the primary component"; say != waiting {
				logf("%s", say)
				waiting = say
			}
			sleep(ctx, pollEvery)
			continue
		}
		waiting = ""
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
		arbitrate(ctx, exited, func() bool { _, ok := primary(); return ok }, func() { cmd.Process.Signal(syscall.SIGTERM) })
		sleep(ctx, pollEvery/2)
	}
	return nil
}

// arbitrate watches a running garbd until it exits (exited), stopping it (stop) when ctx ends or
// when it is orphaned and a primary component runs again (hasPrimary, asked every pollEvery).
func arbitrate(ctx context.Context, exited <-chan error, hasPrimary func() bool, stop func()) {
	without := 0
	for {
		select {
		case err := <-exited:
			logf("garbd ended (%v)", err)
			return
		case <-ctx.Done():
			stop()
			<-exited
			return
		case <-time.After(pollEvery):
		}
		if hasPrimary() {
			if without >= orphanedAfter {
				logf("garbd outlived the primary component, and one runs again: starting garbd anew")
				stop()
				<-exited
				return
			}
			without = 0
		} else {
			without++
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
