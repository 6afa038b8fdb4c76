package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/history"
)

// cookieName is the gate's session cookie.
const cookieName = "session"

// maxEvents bounds the examples a session keeps of each kind.
const maxEvents = 5

// session is one client: touched only by its own goroutine until the run
// is stopped.
type session struct {
	d      *Driver
	client int // its index: the history's client id
	hc     *http.Client
	rng    *rand.Rand
	seq    int // puts sent: values are unique

	loggedIn bool
	id       string // as GET /session says, since the last login
	count    int64  // the requests counter GET /session last said
	counted  bool   // count was read since the last login

	logins, probes int
	ids            []string // every session id it had
	unauthorized   int
	resets, swaps  int
	events         []string // what went wrong, the first few of each kind
	malformed      int
	malformedEx    []string // the first few

	log []event
}

func (d *Driver) newSession(i int) *session {
	return &session{
		d: d, client: i,
		rng: rand.New(rand.NewPCG(d.cfg.Seed, uint64(i))),
		hc:  &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
}

// answer is what one request got.
type answer struct {
	status   int
	body     []byte
	servedBy string
	sent     bool // the request was written in full: an error after it leaves the outcome unknown
	err      error
}

// request sends one request with the session's cookies and classes it in
// the session's log as ok when its status is one of ok.
func (s *session) request(ctx context.Context, method, path string, body any, ok ...int) answer {
	ctx, cancel := context.WithTimeout(ctx, s.d.cfg.RequestTimeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	})
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	t0 := time.Now()
	var a answer
	req, err := http.NewRequestWithContext(ctx, method, s.d.cfg.BaseURL+path, rd)
	if err == nil {
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		var resp *http.Response
		if resp, err = s.hc.Do(req); err == nil {
			a.status, a.servedBy = resp.StatusCode, resp.Header.Get("X-Served-By")
			a.body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
	}
	a.err, a.sent = err, wrote.Load()
	s.count1(t0, method+" "+routeOf(path), a, ok)
	return a
}

// routeOf names a request's path by its route, for the error counts.
func routeOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/items/"):
		return "/items/{id}"
	case strings.HasPrefix(path, "/items?"):
		return "/items?prefix"
	}
	return path
}

// count1 logs a request sent at t0.
func (s *session) count1(t0 time.Time, what string, a answer, ok []int) {
	e := event{sent: t0.Sub(s.d.h.Start()), took: time.Since(t0)}
	switch {
	case a.err != nil:
		e.class, e.why = failed, errKind(a.err)
	case a.status == http.StatusUnauthorized:
		e.class, e.why = unauthorized, "HTTP 401"
	case a.status >= 500:
		e.class, e.why = failed, "HTTP "+strconv.Itoa(a.status)
	case !contains(ok, a.status):
		e.class, e.why = rejected, "HTTP "+strconv.Itoa(a.status)
	case e.took > s.d.cfg.SlowAfter:
		e.class, e.why = failed, "slower than "+s.d.cfg.SlowAfter.String()
	default:
		e.class = succeeded
	}
	if e.why != "" {
		e.why = what + ": " + e.why
	}
	s.log = append(s.log, e)
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// note keeps a description of what went wrong, the first few of a kind.
func (s *session) note(n int, format string, args ...any) {
	if n <= maxEvents {
		s.events = append(s.events, fmt.Sprintf("session %d: ", s.client)+fmt.Sprintf(format, args...))
	}
}

func (s *session) badAnswer(format string, args ...any) {
	s.malformed++
	if len(s.malformedEx) < 2 {
		s.malformedEx = append(s.malformedEx, fmt.Sprintf("session %d: ", s.client)+fmt.Sprintf(format, args...))
	}
}

// login starts a new session: POST /session, then GET /session for its id
// and counter.
func (s *session) login(ctx context.Context) error {
	jar, _ := cookiejar.New(nil)
	s.hc.Jar = jar
	s.loggedIn, s.id, s.count, s.counted = false, "", 0, false
	a := s.request(ctx, http.MethodPost, "/session", nil, http.StatusCreated)
	switch {
	case a.err != nil:
		return fmt.Errorf("POST /session: %s", errKind(a.err))
	case a.status != http.StatusCreated:
		return fmt.Errorf("POST /session: HTTP %d, want 201: %s", a.status, snippet(a.body))
	}
	u, _ := url.Parse(s.d.cfg.BaseURL)
	if !hasCookie(jar.Cookies(u), cookieName) {
		s.badAnswer("POST /session answered 201 without a %q cookie", cookieName)
		return fmt.Errorf("POST /session answered 201 without a %q cookie", cookieName)
	}
	s.logins++
	s.loggedIn = true
	s.probe(ctx)
	return nil
}

func hasCookie(cs []*http.Cookie, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

// loginWaiting logs in, trying again for up to timeout: the app may be
// starting.
func (s *session) loginWaiting(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := s.login(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no session after %s; last: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lost records a 401: the session is gone, and the next turn logs in again.
func (s *session) lost(what string) {
	s.unauthorized++
	s.note(s.unauthorized, "%s answered 401 at %s, %s", what, at(s.d.h.Since(time.Now())), s.sinceLogin())
	s.loggedIn = false
}

func (s *session) sinceLogin() string {
	if !s.counted {
		return "its counter never read"
	}
	return fmt.Sprintf("with session %s's counter last at %d", s.id, s.count)
}

// probe reads GET /session: the id must stay the one of this login, and
// the counter must only grow.
func (s *session) probe(ctx context.Context) {
	a := s.request(ctx, http.MethodGet, "/session", nil, http.StatusOK)
	if a.err != nil {
		return
	}
	if a.status == http.StatusUnauthorized {
		s.lost("GET /session")
		return
	}
	if a.status != http.StatusOK {
		return
	}
	s.probes++
	var v struct {
		ID       string `json:"id"`
		Requests *int64 `json:"requests"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || v.ID == "" || v.Requests == nil {
		s.badAnswer("GET /session answered %s, want {\"id\": …, \"requests\": N}", snippet(a.body))
		return
	}
	now := at(s.d.h.Since(time.Now()))
	switch {
	case s.id == "":
		s.id = v.ID
		s.ids = append(s.ids, v.ID)
	case v.ID != s.id:
		s.swaps++
		s.note(s.swaps, "GET /session answered for session %s at %s, though it logged in as %s", v.ID, now, s.id)
		s.id = v.ID
		s.ids = append(s.ids, v.ID)
	}
	if s.counted && *v.Requests < s.count {
		s.resets++
		s.note(s.resets, "session %s's requests counter went from %d back to %d at %s", s.id, s.count, *v.Requests, now)
	}
	s.count, s.counted = *v.Requests, true
}

// item is the API's item.
type item struct {
	ID      string `json:"id"`
	Value   string `json:"value"`
	Version int64  `json:"version"`
}

func itemPath(key string) string { return "/items/" + url.PathEscape(key) }

// put, get and del are item operations, each recorded in the history.
func (s *session) put(ctx context.Context, key, value string) history.Op {
	call := s.d.h.Invoke(s.client, history.Put, key, value)
	a := s.request(ctx, http.MethodPut, itemPath(key), map[string]string{"value": value}, http.StatusOK)
	call.Return(s.output("PUT", key, a))
	return call.Op()
}

func (s *session) get(ctx context.Context, key string) history.Op {
	call := s.d.h.Invoke(s.client, history.Get, key, "")
	a := s.request(ctx, http.MethodGet, itemPath(key), nil, http.StatusOK, http.StatusNotFound)
	call.Return(s.output("GET", key, a))
	return call.Op()
}

func (s *session) del(ctx context.Context, key string) history.Op {
	call := s.d.h.Invoke(s.client, history.Delete, key, "")
	a := s.request(ctx, http.MethodDelete, itemPath(key), nil, http.StatusNoContent, http.StatusNotFound)
	call.Return(s.output("DELETE", key, a))
	return call.Op()
}

// output is what an item operation's answer means for the history.
func (s *session) output(method, key string, a answer) history.Output {
	out := history.Output{Status: a.status, ServedBy: a.servedBy}
	switch {
	case a.err != nil:
		// Sent in full, it may have been done; not sent, it was not.
		out.Unknown, out.Err = a.sent, errKind(a.err)
		return out
	case a.status == http.StatusUnauthorized:
		s.lost(method + " /items/" + key)
		return out
	case a.status >= 500:
		out.Unknown, out.Err = true, "HTTP "+strconv.Itoa(a.status)
		return out
	case a.status != http.StatusOK || method == "DELETE":
		return out // 204, 404, or a 4xx: not done
	}
	var it item
	err := json.Unmarshal(a.body, &it)
	switch {
	case err != nil:
		err = fmt.Errorf("%w", err)
	case it.ID != key:
		err = fmt.Errorf("it names item %q", it.ID)
	case method == "PUT" && it.Value == "":
		err = errors.New("it has no value")
	}
	if err != nil {
		// A 200 we cannot read: the put was committed, or the read
		// happened, but what they did is unknown.
		s.badAnswer("%s /items/%s answered 200 with %s: %v", method, key, snippet(a.body), err)
		out.Unknown, out.Err = true, "unreadable 200: "+err.Error()
		return out
	}
	out.Value, out.Version = it.Value, it.Version
	return out
}

// readBack reads every key once the load is over, trying each again
// (and logging in again) until it gets an answer or timeout passes. Keys
// not read are missing from the result.
func (s *session) readBack(ctx context.Context, timeout time.Duration) map[string]history.Op {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got := map[string]history.Op{}
	for _, k := range s.d.keys() {
		for pause := 50 * time.Millisecond; ctx.Err() == nil; pause = min(2*pause, time.Second) {
			if !s.loggedIn && s.login(ctx) != nil {
				sleepCtx(ctx, pause)
				continue
			}
			if op := s.get(ctx, k); op.Outcome() == history.Done {
				got[k] = op
				break
			}
			sleepCtx(ctx, pause)
		}
	}
	return got
}

// list asks GET /items?prefix= for the run's keys, so that the final check
// sees keys it never wrote. nil and an error if it could not.
func (s *session) list(ctx context.Context) ([]string, error) {
	if !s.loggedIn {
		if err := s.login(ctx); err != nil {
			return nil, err
		}
	}
	a := s.request(ctx, http.MethodGet, "/items?prefix="+url.QueryEscape(s.d.cfg.KeyPrefix), nil, http.StatusOK)
	switch {
	case a.err != nil:
		return nil, fmt.Errorf("GET /items?prefix: %s", errKind(a.err))
	case a.status != http.StatusOK:
		return nil, fmt.Errorf("GET /items?prefix: HTTP %d: %s", a.status, snippet(a.body))
	}
	// A list of items, or of their ids.
	var raw []json.RawMessage
	if err := json.Unmarshal(a.body, &raw); err != nil {
		return nil, fmt.Errorf("GET /items?prefix answered %s, want a JSON list", snippet(a.body))
	}
	keys := make([]string, 0, len(raw))
	for _, r := range raw {
		var it item
		var id string
		switch {
		case json.Unmarshal(r, &it) == nil && it.ID != "":
			keys = append(keys, it.ID)
		case json.Unmarshal(r, &id) == nil:
			keys = append(keys, id)
		default:
			return nil, fmt.Errorf("GET /items?prefix: element %s is neither an item nor an id", snippet(r))
		}
	}
	return keys, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	if s == "" {
		return "an empty body"
	}
	return strconv.Quote(s)
}

func errKind(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// at formats a time on the run's clock.
func at(d time.Duration) string { return "+" + d.Round(time.Millisecond).String() }
