// Package probe sends HTTP traffic at a service the way its users would, and
// records every outcome: so a test can say how many requests failed while a
// fault lasted, and which replica and which version answered each one.
//
// A reply that is a JSON object with version, task, node or hostname fields
// (what app/echo answers) is read into Outcome.Reply; any other body is only
// counted.
package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Reply is what a replica says about itself.
type Reply struct {
	Version  string `json:"version"`
	Task     string `json:"task"`
	Node     string `json:"node"`
	Hostname string `json:"hostname"`
}

// Outcome is one request.
type Outcome struct {
	Start   time.Time
	Latency time.Duration
	// Status is the HTTP status, 0 when no response came back.
	Status int
	// Err is why the request failed: a transport error or an unexpected
	// status. Empty for a success.
	Err string
	Reply
}

// OK reports whether the request succeeded.
func (o Outcome) OK() bool { return o.Err == "" }

// Client makes requests with a timeout and keeps connections to the target
// alive, like a browser or a load generator would.
type Client struct {
	hc *http.Client
}

// NewClient returns a client whose requests give up after timeout.
func NewClient(timeout time.Duration, conns int) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(conns, 2)
	return &Client{hc: &http.Client{Timeout: timeout, Transport: tr}}
}

// Get makes one request and records what happened.
func (c *Client) Get(ctx context.Context, url string) Outcome {
	o := Outcome{Start: time.Now()}
	defer func() { o.Latency = time.Since(o.Start) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		o.Err = err.Error()
		return o
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		o.Err = err.Error()
		o.Latency = time.Since(o.Start)
		return o
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	o.Status = resp.StatusCode
	o.Latency = time.Since(o.Start)
	switch {
	case err != nil:
		o.Err = fmt.Sprintf("HTTP %d, reading the body: %v", resp.StatusCode, err)
	case resp.StatusCode != http.StatusOK:
		o.Err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, firstLine(body))
	default:
		_ = json.Unmarshal(body, &o.Reply) // not JSON: counted, not read
	}
	return o
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// Options shape steady traffic.
type Options struct {
	// Clients is how many clients send requests at once (default 2).
	Clients int
	// Interval is each client's pause between two requests (default 20ms).
	Interval time.Duration
	// Timeout bounds one request (default 10s): a request slower than
	// this is a failure, as its user would see it.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Clients <= 0 {
		o.Clients = 2
	}
	if o.Interval <= 0 {
		o.Interval = 20 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return o
}

// Traffic is steady traffic running in the background.
type Traffic struct {
	url    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	client *Client

	timeout time.Duration

	mu       sync.Mutex
	outcomes []Outcome
	// inflight holds when each request still awaiting its answer started,
	// by a number of its own.
	inflight map[uint64]time.Time
	next     uint64
}

// Start sends requests to url from opts.Clients clients until Stop.
func Start(url string, opts Options) *Traffic {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	t := &Traffic{url: url, cancel: cancel, client: NewClient(opts.Timeout, opts.Clients), timeout: opts.Timeout, inflight: map[uint64]time.Time{}}
	for range opts.Clients {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for ctx.Err() == nil {
				// The request is in flight from before Get takes its
				// start time, so a summary up to any moment after that
				// waits for it.
				t.mu.Lock()
				id := t.next
				t.next++
				t.inflight[id] = time.Now()
				t.mu.Unlock()
				o := t.client.Get(ctx, url)
				t.mu.Lock()
				delete(t.inflight, id)
				if ctx.Err() != nil {
					t.mu.Unlock()
					return // cut short by Stop: not the service's doing
				}
				t.outcomes = append(t.outcomes, o)
				t.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(opts.Interval):
				}
			}
		}()
	}
	return t
}

// Stop ends the traffic and summarizes all of it. Requests in flight are
// abandoned and not counted: take a SettledSince summary before Stop to
// count them.
func (t *Traffic) Stop() Summary {
	t.cancel()
	t.wg.Wait()
	t.client.Close()
	return t.Between(time.Time{}, time.Time{})
}

// Between summarizes the requests that started in [from, to); a zero bound
// is open.
func (t *Traffic) Between(from, to time.Time) Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Summarize(t.selectLocked(from, to))
}

// selectLocked returns the ended requests that started in [from, to).
func (t *Traffic) selectLocked(from, to time.Time) []Outcome {
	var sel []Outcome
	for _, o := range t.outcomes {
		if (!from.IsZero() && o.Start.Before(from)) || (!to.IsZero() && !o.Start.Before(to)) {
			continue
		}
		sel = append(sel, o)
	}
	return sel
}

// Since summarizes the requests that started at or after from and have
// ended: those still in flight are left out (see SettledSince).
func (t *Traffic) Since(from time.Time) Summary { return t.Between(from, time.Time{}) }

// settleGrace is how long past its timeout a request may take to be
// recorded (the client gives up at the timeout; this is only scheduling).
const settleGrace = time.Second

// SettledSince summarizes every request that started in [from, now): it
// first waits until those of them still in flight have ended, at most the
// request timeout. A request still unanswered after that is counted as a
// failure, so none is left out.
func (t *Traffic) SettledSince(from time.Time) Summary { return t.SettledBetween(from, time.Now()) }

// SettledBetween summarizes every request that started in [from, to), once
// each has ended (as SettledSince); to must not be zero.
func (t *Traffic) SettledBetween(from, to time.Time) Summary {
	deadline := time.Now().Add(t.timeout + settleGrace)
	for {
		t.mu.Lock()
		var pending []time.Time
		for _, start := range t.inflight {
			if start.Before(to) && (from.IsZero() || !start.Before(from)) {
				pending = append(pending, start)
			}
		}
		if len(pending) == 0 || !time.Now().Before(deadline) {
			sel := t.selectLocked(from, to)
			for _, start := range pending {
				sel = append(sel, Outcome{Start: start, Latency: time.Since(start),
					Err: fmt.Sprintf("still unanswered %s after its timeout (%s)", settleGrace, t.timeout)})
			}
			t.mu.Unlock()
			return Summarize(sel)
		}
		t.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

// InFlight is how many requests await their answer now.
func (t *Traffic) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.inflight)
}

// Summary is what a stretch of traffic saw.
type Summary struct {
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
	// Versions and Tasks count the successful replies by the version and
	// the task (or, without a task, the hostname) that answered.
	Versions map[string]int `json:"versions,omitempty"`
	Tasks    map[string]int `json:"tasks,omitempty"`
	// Errors counts failures by message.
	Errors       map[string]int `json:"errors,omitempty"`
	FirstFailure time.Time      `json:"firstFailure,omitzero"`
	LastFailure  time.Time      `json:"lastFailure,omitzero"`
	MaxLatency   time.Duration  `json:"maxLatency"`
	// P99Latency is the latency 99% of the requests (failed ones too) did
	// not exceed: the nearest-rank 99th percentile.
	P99Latency time.Duration `json:"p99Latency"`
	// Outcomes are the requests themselves, oldest first.
	Outcomes []Outcome `json:"-"`
}

// Summarize counts outcomes.
func Summarize(outcomes []Outcome) Summary {
	s := Summary{Versions: map[string]int{}, Tasks: map[string]int{}, Errors: map[string]int{}}
	sorted := append([]Outcome(nil), outcomes...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Start.Before(sorted[j].Start) })
	s.Outcomes = sorted
	s.P99Latency = percentile(sorted, 0.99)
	for _, o := range sorted {
		s.Requests++
		s.MaxLatency = max(s.MaxLatency, o.Latency)
		if !o.OK() {
			s.Failed++
			s.Errors[o.Err]++
			if s.FirstFailure.IsZero() {
				s.FirstFailure = o.Start
			}
			s.LastFailure = o.Start
			continue
		}
		if o.Version != "" {
			s.Versions[o.Version]++
		}
		if id := o.Task; id != "" {
			s.Tasks[id]++
		} else if o.Hostname != "" {
			s.Tasks[o.Hostname]++
		}
	}
	return s
}

// percentile is the nearest-rank p-th quantile of the outcomes' latencies:
// the smallest latency that at least p of them do not exceed.
func percentile(outcomes []Outcome, p float64) time.Duration {
	if len(outcomes) == 0 {
		return 0
	}
	lat := make([]time.Duration, len(outcomes))
	for i, o := range outcomes {
		lat[i] = o.Latency
	}
	slices.Sort(lat)
	rank := int(math.Ceil(p * float64(len(lat))))
	return lat[min(max(rank, 1), len(lat))-1]
}

// Last returns the time of the last successful reply from version v, and
// whether there was one.
func (s Summary) Last(version string) (time.Time, bool) {
	for i := len(s.Outcomes) - 1; i >= 0; i-- {
		if o := s.Outcomes[i]; o.OK() && o.Version == version {
			return o.Start, true
		}
	}
	return time.Time{}, false
}

// First returns the time of the first successful reply from version v, and
// whether there was one.
func (s Summary) First(version string) (time.Time, bool) {
	for _, o := range s.Outcomes {
		if o.OK() && o.Version == version {
			return o.Start, true
		}
	}
	return time.Time{}, false
}

// String is a one-line account: "412 requests, 0 failed; latency p99 12ms,
// max 40ms; versions v1:200 v2:212".
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d failed", s.Requests, s.Failed)
	if s.Requests > 0 {
		fmt.Fprintf(&b, "; latency p99 %s, max %s", s.P99Latency.Round(time.Millisecond), s.MaxLatency.Round(time.Millisecond))
	}
	if len(s.Versions) > 0 {
		b.WriteString("; versions")
		for _, k := range sortedKeys(s.Versions) {
			fmt.Fprintf(&b, " %s:%d", k, s.Versions[k])
		}
	}
	if len(s.Errors) > 0 {
		b.WriteString("; errors:")
		for _, k := range sortedKeys(s.Errors) {
			fmt.Fprintf(&b, " %dx %q", s.Errors[k], k)
		}
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Sequence makes n requests one after another, on one kept-alive
// connection when the server allows it, and summarizes them.
func Sequence(ctx context.Context, url string, n int, timeout time.Duration) Summary {
	return sequence(ctx, NewClient(timeout, 1), url, n)
}

// SequenceNewConns is Sequence with a new connection for every request: what
// a balancer that picks a backend per connection (IPVS) needs to spread
// them.
func SequenceNewConns(ctx context.Context, url string, n int, timeout time.Duration) Summary {
	c := NewClient(timeout, 1)
	c.hc.Transport.(*http.Transport).DisableKeepAlives = true
	return sequence(ctx, c, url, n)
}

func sequence(ctx context.Context, c *Client, url string, n int) Summary {
	defer c.Close()
	outcomes := make([]Outcome, 0, n)
	for range n {
		if ctx.Err() != nil {
			break
		}
		outcomes = append(outcomes, c.Get(ctx, url))
	}
	return Summarize(outcomes)
}
