// Package loadgen votes through the vote service and then checks, voter by
// voter, that the results service counts exactly what was acknowledged.
//
// Each voter's votes are sent one after another from one goroutine, so a
// voter's latest acknowledged vote is well defined. After the tally settles,
// every voter is read back (GET /api/voter) and must be counted with its
// latest acknowledged vote or with a vote whose outcome is unknown (a 5xx, a
// timeout, a broken connection: it may have been recorded); a voter with no
// acknowledged vote may also be counted with none. The tally's totals are
// checked against the voters read, as a second, independent view. A run that
// proved too little (few votes acknowledged, many voters uncertain) is
// inconclusive, not a pass: see Report.Verdict.
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

	"github.com/swarmlab/swarmlab/app/internal/latency"
)

// baselineTimeout bounds the wait for the results service to answer
// before the first vote is sent.
const baselineTimeout = time.Minute

// Default floors under which a run proves too little to pass.
const (
	DefaultMinAccepted  = 0.5
	DefaultMaxUncertain = 0.05
)

// Config for one run. Zero values get defaults where noted.
type Config struct {
	URLs           []string      // vote service base URLs, used round-robin (normally one: the edge)
	ResultsURL     string        // results service base URL
	Votes          int           // votes to send
	Voters         int           // distinct voters (default Votes/2); extra votes are repeats
	Switch         float64       // chance a repeat vote switches option
	Rate           float64       // votes/s overall; 0 = as fast as possible
	Concurrency    int           // concurrent keep-alive connections (default 64)
	Timeout        time.Duration // how long to wait for the tally to match, and again for reading the voters (default 60s)
	RequestTimeout time.Duration // per vote (default 10s)
	Seed           uint64        // workload seed (default: random)
	Prefix         string        // voter id prefix (default: random, so runs never share voters)
	Client         *http.Client  // for reading results and voters (votes use voteConn)
	// Stop, when closed, ends sending early: no vote is sent after it, and
	// the run goes on to wait for the tally of the votes that were sent.
	// Nil sends all Votes.
	Stop <-chan struct{}

	// The floors of a conclusive run: at least MinAccepted of the votes
	// sent acknowledged (default 0.5; negative: no floor), at most
	// MaxUncertain of the voters uncertain (default 0.05; negative: none).
	MinAccepted, MaxUncertain float64
}

// Report is the outcome of a run. Verdict says whether it passed.
type Report struct {
	Started  time.Time `json:"started"`
	Sent     int       `json:"sent"`
	Accepted int       `json:"accepted"`                // 2xx
	Rejected int       `json:"rejected"`                // 4xx: certainly not recorded
	Failed   int       `json:"failed"`                  // 5xx or transport errors: maybe recorded
	Stopped  bool      `json:"stopped_early,omitempty"` // Config.Stop ended sending before all Votes

	SendSeconds  float64 `json:"send_seconds"`
	VotesPerSec  float64 `json:"accepted_votes_per_sec"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	CountedAfter float64 `json:"counted_after_seconds"` // from the last reply until the tally was in range; -1 if never

	// The per-voter check, on which the verdict rests.
	Voters     int    `json:"voters"`     // voters who sent at least one vote
	Checked    int    `json:"checked"`    // of them, read back from /api/voter
	Unread     int    `json:"unread"`     // could not be read in time
	Lost       Voters `json:"lost"`       // latest acknowledged vote not counted: none, or an older vote instead
	Unexpected Voters `json:"unexpected"` // counted with a vote never acknowledged nor left unknown for them
	Uncertain  Voters `json:"uncertain"`  // more than one final state possible because of failed requests
	Rechecks   int    `json:"rechecks"`   // times the voters were read again because some still lacked their latest vote
	Counted    Tally  `json:"counted"`    // the checked voters' counted votes, added up

	// The totals: the tally must have moved by exactly Counted.
	Baseline     Tally `json:"baseline"`       // tally before the run
	Expected     Tally `json:"expected"`       // baseline + this run's votes (lower bound if uncertain > 0)
	ExpectHi     Tally `json:"expected_high"`  // upper bound; equals expected when uncertain == 0
	Observed     Tally `json:"observed"`       // last tally read
	TallyInRange bool  `json:"tally_in_range"` // observed was within expected .. expected_high
	TallySteady  bool  `json:"tally_steady"`   // the tally did not move while the voters were read
	TallyDiff    Tally `json:"tally_diff"`     // (observed - baseline) - counted; zero when the two views agree

	MinAccepted  float64 `json:"min_accepted"`  // floor: share of votes sent that must be acknowledged
	MaxUncertain float64 `json:"max_uncertain"` // ceiling: largest share of voters that may be uncertain
	Result       string  `json:"verdict"`       // "pass", or what Verdict says is wrong

	Errors map[string]int `json:"errors,omitempty"` // failure kinds and how often

	log []event // every request, by send time: for Between
}

// Voters counts voters in one class of the check, with a few examples.
type Voters struct {
	Count    int      `json:"count"`
	Examples []string `json:"examples,omitempty"` // up to maxExamples voter ids
}

const maxExamples = 10

func (v *Voters) add(id string) {
	v.Count++
	if len(v.Examples) < maxExamples {
		v.Examples = append(v.Examples, id)
	}
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

// voter is touched only by the goroutine that owns it until sending ends.
//
// unknown keeps the choices of every vote with an unknown outcome, also of
// those sent before the latest acknowledged one: such a vote may be stamped
// (and so win) after it. The edge retries a vote on another task when a task
// does not answer within its server timeout (30s, three times, with
// retry-on response-timeout), long after loadgen gave up on it (10s) and
// went on with the voter's next vote; and a vote task does not stop a vote
// it already took when the client goes away.
type voter struct {
	acked   byte  // latest acknowledged choice, 0 if none
	unknown uint8 // choices of votes whose outcome is unknown (bitA, bitB)
	ever    uint8 // choices ever acknowledged or unknown
	used    bool  // at least one vote was sent
}

const bitA, bitB = 1, 2

func bit(c byte) uint8 {
	switch c {
	case 'a':
		return bitA
	case 'b':
		return bitB
	}
	return 0
}

// allowed returns the final states the voter may be counted with: a set of
// choices, and whether "no vote" is one of them.
func (v voter) allowed() (choices uint8, none bool) {
	if v.acked != 0 {
		return bit(v.acked) | v.unknown, false
	}
	return v.unknown, true
}

func (v voter) uncertain() bool {
	c, none := v.allowed()
	n := 0
	if none {
		n++
	}
	for ; c != 0; c &= c - 1 {
		n++
	}
	return n > 1
}

// Run sends the votes, waits for the tally, checks every voter, and
// reports. The error is for runs that could not be carried out; whether the
// run passed is Report.Verdict.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	rep := Report{MinAccepted: cfg.MinAccepted, MaxUncertain: cfg.MaxUncertain}
	// Right after a deploy the edge may not route to results yet (HTTP
	// 503 until its health check passes): wait for the tally to start from.
	var base Tally
	err := poll(ctx, "the tally before the run from "+cfg.ResultsURL+"/api/results", baselineTimeout, 500*time.Millisecond,
		func(ctx context.Context) (string, bool) {
			t, err := fetchTally(ctx, cfg.Client, cfg.ResultsURL)
			if err != nil {
				return err.Error(), false
			}
			base = t
			return fmt.Sprintf("a=%d b=%d", t.A, t.B), true
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
	rep.Started = start
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
				body = append(body, cfg.Prefix...) // as voterID
				body = strconv.AppendInt(body, int64(v.voter), 10)
				body = append(body, `"}`...)
				t0 := time.Now()
				status, err := conn.send(body, cfg.RequestTimeout)
				o := res.count(t0, status, err)
				res.log = append(res.log, newEvent(t0.Sub(start), o))
				vs := &voters[v.voter]
				vs.used = true
				switch o {
				case accepted:
					// Earlier unknown outcomes stay possible (see voter).
					vs.acked = v.choice
					vs.ever |= bit(v.choice)
				case failed:
					vs.unknown |= bit(v.choice)
					vs.ever |= bit(v.choice)
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
	rep.P50ms, rep.P99ms = latency.Ms(tot.lat, 0.50), latency.Ms(tot.lat, 0.99)
	rep.log = mergeLogs(results)

	// Expected tally: per voter, the set of possible final states.
	lo, hi := base, base
	for i, v := range voters {
		if !v.used {
			continue
		}
		rep.Voters++
		set, none := v.allowed()
		if v.uncertain() {
			rep.Uncertain.add(cfg.voterID(i))
		}
		if set&bitA != 0 {
			hi.A++
		}
		if set&bitB != 0 {
			hi.B++
		}
		if !none && set == bitA {
			lo.A++
		}
		if !none && set == bitB {
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
			if inRange && (rep.Uncertain.Count == 0 || stable >= 10) {
				rep.TallyInRange = true
				rep.CountedAfter = time.Since(sendDone).Seconds()
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A tally in range is not yet a settled one: a vote a worker read and
	// never committed (it died) stays pending until another worker claims
	// it, a second or more later, and two such voters, one each way, cancel
	// out in the totals (seen: TestEndToEndWorkerFailover, totals exact,
	// two voters still counted with their older vote). So while some voters
	// are counted without their latest acknowledged vote, they are all read
	// again, until none is or the wait for the tally runs out: only those
	// still wrong then are lost. A vote really dropped never shows, and
	// still fails the run, only later.
	for {
		if err := cfg.checkVoters(ctx, voters, &rep); err != nil {
			return rep, err
		}
		if rep.Lost.Count == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		rep.Rechecks++
		time.Sleep(250 * time.Millisecond)
	}
	rep.Result = "pass"
	if err := rep.Verdict(); err != nil {
		rep.Result = err.Error()
	}
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
		// Keep a connection per voter reader, or most would be re-dialled
		// for every voter (the default keeps 2 per host).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = voterReaders
		cfg.Client = &http.Client{Transport: t}
	}
	cfg.MinAccepted = floor(cfg.MinAccepted, DefaultMinAccepted)
	cfg.MaxUncertain = floor(cfg.MaxUncertain, DefaultMaxUncertain)
	return nil
}

// floor applies the default to 0 and turns a negative value into 0.
func floor(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func (cfg *Config) voterID(i int) string { return cfg.Prefix + strconv.Itoa(i) }

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
