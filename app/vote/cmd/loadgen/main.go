// Command loadgen votes through the edge and checks the tally is exact:
// no acknowledged vote lost, none counted twice. It exits 1 on a mismatch.
//
// The first Ctrl-C stops sending and still checks the tally of the votes
// sent; a second one quits.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/swarmlab/swarmlab/app/vote/internal/env"
	"github.com/swarmlab/swarmlab/app/vote/internal/svc"
	"github.com/swarmlab/swarmlab/app/vote/loadgen"
)

func main() {
	urls := env.String("url", "VOTE_URL", "http://localhost:8080", "vote base URL (the edge); a comma list is used round-robin")
	resultsURL := env.String("results-url", "RESULTS_URL", "http://localhost:8081", "results base URL")
	votes := flag.Int("votes", 20000, "votes to send")
	voters := flag.Int("voters", 0, "distinct voters (default votes/2); the other votes are repeats")
	sw := flag.Float64("switch", 0.3, "chance that a repeat vote switches option")
	rate := flag.Float64("rate", 0, "votes per second; 0 = as fast as possible")
	conc := flag.Int("concurrency", 64, "concurrent keep-alive connections")
	timeout := flag.Duration("timeout", time.Minute, "how long to wait for the tally to match")
	reqTimeout := flag.Duration("request-timeout", 10*time.Second, "timeout per vote")
	seed := flag.Uint64("seed", 0, "workload seed (0 = random)")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	ceiling := flag.String("ceiling", "", "instead of voting, GET this URL as fast as possible for -duration and print the 2xx rate: the ceiling of the path to it (e.g. http://<interlock>/edge/ping, answered by HAProxy itself)")
	duration := flag.Duration("duration", 20*time.Second, "how long -ceiling runs")
	flag.Parse()

	if *ceiling != "" {
		ctx, stop := svc.SignalContext()
		defer stop()
		rep, err := loadgen.Ceiling(ctx, *ceiling, *conc, *duration)
		if err != nil && !errors.Is(err, context.Canceled) { // Ctrl-C: report what was measured
			log.Fatal(err)
		}
		output(*asJSON, rep, func() {
			fmt.Printf("GET %s over %d connections for %.1fs: %d ok (%.0f/s), %d failed; p50 %.2f ms, p99 %.2f ms\n",
				rep.URL, rep.Concurrency, rep.Seconds, rep.OK, rep.PerSec, rep.Failed, rep.P50ms, rep.P99ms)
			printErrors(rep.Errors)
		})
		return
	}
	ctx, quit := context.WithCancel(context.Background())
	defer quit()
	stopSending := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "loadgen: no more votes; checking the tally of those sent (again to quit)")
		close(stopSending)
		<-sigs
		quit()
	}()
	rep, err := loadgen.Run(ctx, loadgen.Config{
		URLs: env.List(*urls), ResultsURL: *resultsURL,
		Votes: *votes, Voters: *voters, Switch: *sw, Rate: *rate, Concurrency: *conc,
		Timeout: *timeout, RequestTimeout: *reqTimeout, Seed: *seed, Stop: stopSending,
	})
	if err != nil {
		log.Fatal(err)
	}
	output(*asJSON, rep, func() { printReport(rep) })
	if !rep.Match {
		os.Exit(1)
	}
}

// output prints report as indented JSON, or as text by printText.
func output(asJSON bool, report any, printText func()) {
	if !asJSON {
		printText()
		return
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(report)
}

func printErrors(errs map[string]int) {
	for k, n := range errs {
		fmt.Printf("  error %q: %d\n", k, n)
	}
}

func printReport(r loadgen.Report) {
	if r.Stopped {
		fmt.Println("stopped early by a signal: the figures are for the votes sent")
	}
	fmt.Printf("sent %d votes in %.2fs: %d accepted (%.0f votes/s), %d rejected, %d failed\n",
		r.Sent, r.SendSeconds, r.Accepted, r.VotesPerSec, r.Rejected, r.Failed)
	fmt.Printf("latency p50 %.2f ms, p99 %.2f ms\n", r.P50ms, r.P99ms)
	printErrors(r.Errors)
	if r.Uncertain > 0 {
		fmt.Printf("%d voters have an unknown final vote (a failed request may have been recorded)\n", r.Uncertain)
	}
	fmt.Printf("expected a=%d b=%d total=%d", r.Expected.A, r.Expected.B, r.Expected.Total)
	if r.ExpectHi != r.Expected {
		fmt.Printf(" .. a=%d b=%d total=%d", r.ExpectHi.A, r.ExpectHi.B, r.ExpectHi.Total)
	}
	fmt.Printf("\nobserved a=%d b=%d total=%d (baseline a=%d b=%d)\n",
		r.Observed.A, r.Observed.B, r.Observed.Total, r.Baseline.A, r.Baseline.B)
	fmt.Printf("lost %d, double-counted %d\n", r.Lost, r.Double)
	if r.Match {
		fmt.Printf("OK: every acknowledged vote counted exactly once, %.2fs after the last reply\n", r.CountedAfter)
	} else {
		fmt.Println("MISMATCH")
	}
}
