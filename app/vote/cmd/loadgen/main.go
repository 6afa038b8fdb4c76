// Command loadgen votes through the edge and then checks every voter: each
// must be counted with their latest acknowledged vote (or with a vote whose
// outcome was unknown), and the tally must agree. It exits 1 on a lost or
// unexpected vote or a tally that disagrees, and 1 too, saying
// "inconclusive", when too few votes were acknowledged or too many voters
// are uncertain to prove anything (-min-accepted, -max-uncertain).
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
	"strings"
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
	minAccepted := flag.Float64("min-accepted", loadgen.DefaultMinAccepted, "inconclusive unless at least this share of the votes sent is acknowledged")
	maxUncertain := flag.Float64("max-uncertain", loadgen.DefaultMaxUncertain, "inconclusive if more than this share of the voters is uncertain (0 = none may be)")
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
		MinAccepted: zeroIsNone(*minAccepted), MaxUncertain: zeroIsNone(*maxUncertain),
	})
	if err != nil {
		log.Fatal(err)
	}
	output(*asJSON, rep, func() { printReport(rep) })
	if err := rep.Verdict(); err != nil {
		if *asJSON {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(1)
	}
}

// zeroIsNone maps a flag's 0 ("none") to Config's negative: in Config, 0
// means the default.
func zeroIsNone(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
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
	fmt.Printf("expected a=%d b=%d total=%d", r.Expected.A, r.Expected.B, r.Expected.Total)
	if r.ExpectHi != r.Expected {
		fmt.Printf(" .. a=%d b=%d total=%d", r.ExpectHi.A, r.ExpectHi.B, r.ExpectHi.Total)
	}
	fmt.Printf("\nobserved a=%d b=%d total=%d (baseline a=%d b=%d)", r.Observed.A, r.Observed.B, r.Observed.Total, r.Baseline.A, r.Baseline.B)
	if r.CountedAfter >= 0 {
		fmt.Printf(", in range %.2fs after the last reply", r.CountedAfter)
	}
	fmt.Println()
	fmt.Printf("voters: %d voted, %d checked, %d unread; the checked are counted a=%d b=%d\n",
		r.Voters, r.Checked, r.Unread, r.Counted.A, r.Counted.B)
	printVoters("lost", r.Lost)
	printVoters("unexpected", r.Unexpected)
	printVoters("uncertain (a failed vote may have been recorded)", r.Uncertain)
	fmt.Printf("floors: at least %.1f%% of votes acknowledged, at most %.1f%% of voters uncertain\n", 100*r.MinAccepted, 100*r.MaxUncertain)
	switch err := r.Verdict(); {
	case errors.Is(err, loadgen.ErrInconclusive):
		fmt.Println(err) // "inconclusive: ..."
		return
	case err != nil:
		fmt.Println("FAIL:", err)
		return
	}
	fmt.Println("OK: every voter is counted with their latest acknowledged vote, and the tally agrees")
}

func printVoters(what string, v loadgen.Voters) {
	fmt.Printf("%s: %d", what, v.Count)
	if len(v.Examples) > 0 {
		fmt.Printf(", e.g. %s", strings.Join(v.Examples, " "))
	}
	fmt.Println()
}
