// Package loadgen votes through the vote service and then checks that the
// results service counted exactly the votes that were acknowledged.
//
// Each voter's votes are sent one after another from one goroutine, so a
// voter's latest acknowledged vote is well defined, and the expected tally is
// known exactly. A vote that failed without a clear "no" (a 5xx, a timeout, a
// broken connection) may or may not have been recorded; such voters widen
// the expected range instead of making the check guess.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmlab/swarmlab/lab/wait"
)

// baselineTimeout bounds the wait for the results service to answer
// before the first vote is sent.
const baselineTimeout = time.Minute

// Config for one run. Zero values get defaults where noted.
type Config struct {
	URLs           []string      // vote service base URLs, used round-robin (normally one: the edge)
	ResultsURL     string        // results service base URL
	Votes          int           // votes to send
	Voters         int           // distinct voters (default Votes/2); extra votes are repeats
	Switch         float64       // chance a repeat vote switches option
	Rate           float64       // votes/s overall; 0 = as fast as possible
	Concurrency    int           // concurrent keep-alive connections (default 64)
	Timeout        time.Duration // how long to wait for the tally to match (default 60s)
	RequestTimeout time.Duration // per vote (default 10s)
	Seed           uint64        // workload seed (default: random)
	Prefix         string        // voter id prefix (default: random, so runs never share voters)
	Client         *http.Client  // for reading results (votes use voteConn)
	// Stop, when closed, ends sending early: no vote is sent after it, and
	// the run goes on to wait for the tally of the votes that were sent.
	// Nil sends all Votes.
	Stop <-chan struct{}
}

// Report is the outcome of a run.
type Report struct {
	Sent      int  `json:"sent"`
	Accepted  int  `json:"accepted"`                // 2xx
	Rejected  int  `json:"rejected"`                // 4xx: certainly not recorded
	Failed    int  `json:"failed"`                  // 5xx or transport errors: maybe recorded
	Uncertain int  `json:"uncertain"`               // voters whose final vote is unknown because of failures
	Stopped   bool `json:"stopped_early,omitempty"` // Config.Stop ended sending before all Votes

	SendSeconds  float64 `json:"send_seconds"`
	VotesPerSec  float64 `json:"accepted_votes_per_sec"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	CountedAfter float64 `json:"counted_after_seconds"` // from the last reply until the tally matched; -1 if never

	Baseline Tally `json:"baseline"`      // tally before the run
	Expected Tally `json:"expected"`      // baseline + this run's votes (lower bound if uncertain > 0)
	ExpectHi Tally `json:"expected_high"` // upper bound; equals expected when uncertain == 0
	Observed Tally `json:"observed"`      // last tally read
	Lost     int64 `json:"lost"`          // acknowledged votes missing from the tally
	Double   int64 `json:"double_counted"`
	Match    bool  `json:"match"`

	Errors map[string]int `json:"errors,omitempty"` // failure kinds and how often
}

// Tally is the shape of /api/results.
type Tally struct {
	A     int64 `json:"a"`
	B     int64 `json:"b"`
	Total int64 `json:"total"`
}

type vote struct {
	voter  int32
	choice byte
}

// voter is touched only by the goroutine that owns it.
type voter struct {
	acked   byte  // latest acknowledged choice, 0 if none
	unacked uint8 // choices of votes whose outcome is unknown (bit 1 = a, 2 = b)
}

const bitA, bitB = 1, 2

func bit(c byte) uint8 {
	if c == 'a' {
		return bitA
	}
	return bitB
}

// Run sends the votes, waits for the tally, and reports. The error is for
// runs that could not be carried out; a mismatch is reported in Report.Match.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	var rep Report
	// Right after a deploy the edge may not route to results yet (HTTP
	// 503 until its health check passes): wait for the tally to start from.
	var base Tally
	_, err := wait.For(ctx, "the tally before the run from "+cfg.ResultsURL+"/api/results", baselineTimeout, 500*time.Millisecond,
		func(ctx context.Context) wait.Result {
			t, err := fetchTally(ctx, cfg.Client, cfg.ResultsURL)
			if err != nil {
				return wait.Continue("%v", err)
			}
			base = t
			return wait.Done(fmt.Sprintf("a=%d b=%d", t.A, t.B))
		})
	if err != nil {
		return rep, fmt.Errorf("baseline tally: %w", err)
	}
	rep.Baseline = base

	plan := cfg.plan()
	voters := make([]voter, cfg.Voters)
	results := make([]connStats, cfg.Concurrency)
	var slot atomic.Int64
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for g := range cfg.Concurrency {
		wg.Go(func() {
			res := &results[g]
			conns := make([]*voteConn, len(cfg.URLs))
			for i, u := range cfg.URLs {
				conns[i], _ = newVoteConn(u) // validated in defaults
			}
			defer func() {
				for _, c := range conns {
					c.close()
				}
			}()
			var body []byte
			for i, v := range plan[g] {
				if ctx.Err() != nil || stopped(cfg.Stop) {
					return
				}
				if interval > 0 {
					due := start.Add(time.Duration(slot.Add(1)-1) * interval)
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				conn := conns[(g+i)%len(conns)]
				body = append(body[:0], `{"vote":"`...)
				body = append(body, v.choice)
				body = append(body, `","voter_id":"`...)
				body = append(body, cfg.Prefix...)
				body = strconv.AppendInt(body, int64(v.voter), 10)
				body = append(body, `"}`...)
				t0 := time.Now()
				status, err := conn.send(body, cfg.RequestTimeout)
				switch res.count(t0, status, err) {
				case accepted:
					// Keep earlier unknown outcomes: a vote that timed out here
					// may still have been stamped after this one on the server.
					voters[v.voter].acked = v.choice
				case failed:
					voters[v.voter].unacked |= bit(v.choice)
				}
			}
		})
	}
	wg.Wait()
	sendDone := time.Now()
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	tot := sumStats(results)
	rep.Sent, rep.Accepted, rep.Rejected, rep.Failed, rep.Errors = tot.sent, tot.ok, tot.rejected, tot.failed, tot.errs
	rep.Stopped = rep.Sent < cfg.Votes
	rep.SendSeconds = sendDone.Sub(start).Seconds()
	if rep.SendSeconds > 0 {
		rep.VotesPerSec = float64(rep.Accepted) / rep.SendSeconds
	}
	rep.P50ms, rep.P99ms = pct(tot.lat, 0.50), pct(tot.lat, 0.99)

	// Expected tally: per voter, the set of possible final states.
	lo, hi := base, base
	for _, v := range voters {
		set := v.unacked
		if v.acked != 0 {
			set |= bit(v.acked)
		}
		// Certain only if an acknowledged vote exists and every unknown
		// outcome is for the same option.
		certain := v.acked != 0 && set == bit(v.acked)
		if v.unacked != 0 && !certain {
			rep.Uncertain++
		}
		if set&bitA != 0 {
			hi.A++
		}
		if set&bitB != 0 {
			hi.B++
		}
		if certain && v.acked == 'a' {
			lo.A++
		}
		if certain && v.acked == 'b' {
			lo.B++
		}
	}
	lo.Total, hi.Total = lo.A+lo.B, hi.A+hi.B
	rep.Expected, rep.ExpectHi = lo, hi

	// Poll until the tally is right (and, if uncertain, has stopped moving).
	rep.CountedAfter = -1
	deadline := time.Now().Add(cfg.Timeout)
	var prev Tally
	stable := 0
	for {
		obs, err := fetchTally(ctx, cfg.Client, cfg.ResultsURL)
		if err == nil {
			rep.Observed = obs
			inRange := lo.A <= obs.A && obs.A <= hi.A && lo.B <= obs.B && obs.B <= hi.B
			if obs == prev {
				stable++
			} else {
				stable = 0
			}
			prev = obs
			if inRange && (rep.Uncertain == 0 || stable >= 10) {
				rep.Match = true
				rep.CountedAfter = time.Since(sendDone).Seconds()
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	o := rep.Observed
	rep.Lost = max(0, lo.A-o.A) + max(0, lo.B-o.B)
	rep.Double = max(0, o.A-hi.A) + max(0, o.B-hi.B)
	return rep, nil
}

// stopped reports whether stop is closed; a nil stop never is.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func (cfg *Config) defaults() error {
	if len(cfg.URLs) == 0 || cfg.ResultsURL == "" {
		return errors.New("need vote URL(s) and a results URL")
	}
	for i, u := range cfg.URLs {
		cfg.URLs[i] = strings.TrimRight(u, "/")
		if _, err := newVoteConn(cfg.URLs[i]); err != nil {
			return err
		}
	}
	cfg.ResultsURL = strings.TrimRight(cfg.ResultsURL, "/")
	if cfg.Votes <= 0 {
		return errors.New("votes must be positive")
	}
	if cfg.Voters <= 0 {
		cfg.Voters = max(1, cfg.Votes/2)
	}
	cfg.Voters = min(cfg.Voters, cfg.Votes)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	cfg.Concurrency = min(cfg.Concurrency, cfg.Voters)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("lg-%08x-", rand.Uint32())
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	return nil
}

// plan deals the votes to goroutines: voter i belongs to goroutine
// i % Concurrency, so one voter's votes are sent in order, never in parallel.
// Every voter votes once; the remaining votes are repeats by random voters.
func (cfg *Config) plan() [][]vote {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x766f7465))
	last := make([]byte, cfg.Voters)
	plan := make([][]vote, cfg.Concurrency)
	add := func(v int, c byte) {
		last[v] = c
		g := v % cfg.Concurrency
		plan[g] = append(plan[g], vote{voter: int32(v), choice: c})
	}
	for v := range cfg.Voters {
		add(v, "ab"[r.IntN(2)])
	}
	for range cfg.Votes - cfg.Voters {
		v := r.IntN(cfg.Voters)
		c := last[v]
		if r.Float64() < cfg.Switch {
			c = 'a' + 'b' - c
		}
		add(v, c)
	}
	return plan
}

func fetchTally(ctx context.Context, c *http.Client, base string) (Tally, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/results", nil)
	if err != nil {
		return Tally{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Tally{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return Tally{}, fmt.Errorf("results: HTTP %d", resp.StatusCode)
	}
	var t Tally
	err = json.NewDecoder(resp.Body).Decode(&t)
	return t, err
}

func errKind(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(p*float64(len(sorted))))
	return float64(sorted[i]) / float64(time.Millisecond)
}
