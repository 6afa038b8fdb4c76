// Package server keeps the visualizer's model fresh from a Docker engine and
// serves it: the page, /api/state (JSON), /events (Server-Sent Events) and
// /healthz. It only ever lists nodes, services and tasks and reads the event
// stream; it passes no request through to the engine.
package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/app/viz/internal/model"
)

// API is all of the Docker client the visualizer uses: three lists and the
// event stream. Nothing in it changes the swarm.
type API interface {
	NodeList(ctx context.Context, opts client.NodeListOptions) (client.NodeListResult, error)
	ServiceList(ctx context.Context, opts client.ServiceListOptions) (client.ServiceListResult, error)
	TaskList(ctx context.Context, opts client.TaskListOptions) (client.TaskListResult, error)
	Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult
}

// Sources of freshness, shown on the page.
const (
	SourceEvents  = "events"
	SourcePolling = "polling"
)

// Config tunes how often the model is re-read. Zero values take the defaults.
type Config struct {
	// Resync re-reads everything this often while the event stream works.
	// Docker has no task events, and a manager sees container events of its
	// own node only, so a task starting on another node is seen by a re-read.
	Resync time.Duration
	// Poll re-reads this often while the event stream is down.
	Poll time.Duration
	// Settle is how long after an event the model is re-read every
	// SettleEvery: a node going down is one event, the tasks the swarm then
	// moves to other nodes are none.
	Settle, SettleEvery time.Duration
	// Retry is the first wait before re-opening a failed event stream; it
	// doubles up to 10 s.
	Retry time.Duration
	// Timeout bounds one re-read.
	Timeout time.Duration
	// Logf logs; nil discards.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Resync, 5*time.Second)
	def(&c.Poll, time.Second)
	def(&c.Settle, 12*time.Second)
	def(&c.SettleEvery, 500*time.Millisecond)
	def(&c.Retry, time.Second)
	def(&c.Timeout, 10*time.Second)
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// eventTypes are the events that can change the picture.
var eventTypes = []string{string(events.NodeEventType), string(events.ServiceEventType), string(events.ContainerEventType)}

// Watcher holds the current model and tells subscribers when it changes.
type Watcher struct {
	api API
	cfg Config

	kick chan struct{}

	mu          sync.Mutex
	state       model.State
	healthy     bool // the last re-read succeeded
	source      string
	settleUntil time.Time
	changed     chan struct{} // closed and replaced on every change
}

// NewWatcher returns a watcher of api; call Run to start it.
func NewWatcher(api API, cfg Config) *Watcher {
	return &Watcher{
		api:     api,
		cfg:     cfg.withDefaults(),
		kick:    make(chan struct{}, 1),
		source:  SourcePolling,
		state:   model.State{Source: SourcePolling, Nodes: []model.Node{}, Unassigned: []model.Task{}, Error: "not read yet"},
		changed: make(chan struct{}),
	}
}

// Current returns the model and a channel closed at its next change.
func (w *Watcher) Current() (model.State, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state, w.changed
}

// Healthy reports whether the last re-read of the engine succeeded, and
// why not.
func (w *Watcher) Healthy() (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.healthy, w.state.Error
}

// Run keeps the model fresh until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { w.watchEvents(ctx) })
	w.refreshLoop(ctx)
	wg.Wait()
}

// Kick asks for a re-read now.
func (w *Watcher) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Watcher) refreshLoop(ctx context.Context) {
	for {
		w.Refresh(ctx)
		timer := time.NewTimer(w.interval())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-w.kick:
			timer.Stop()
		case <-timer.C:
		}
	}
}

func (w *Watcher) interval() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case time.Now().Before(w.settleUntil):
		return w.cfg.SettleEvery
	case w.source == SourceEvents:
		return w.cfg.Resync
	}
	return w.cfg.Poll
}

// watchEvents follows the engine's event stream, re-opening it after a
// failure; while it is down the refresh loop polls.
func (w *Watcher) watchEvents(ctx context.Context) {
	retry := w.cfg.Retry
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		res := w.api.Events(sctx, client.EventsListOptions{Filters: make(client.Filters).Add("type", eventTypes...)})
		err := w.follow(sctx, res, &retry)
		cancel()
		if ctx.Err() != nil {
			return
		}
		w.setSource(SourcePolling)
		w.cfg.Logf("event stream failed (%v): polling every %v, retrying the stream in %v", err, w.cfg.Poll, retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, 10*time.Second)
	}
}

// follow reads one event stream until it fails. The engine answers an
// events request only once it has subscribed us, so a stream that has not
// failed within openGrace counts as open, even before its first event.
func (w *Watcher) follow(ctx context.Context, res client.EventsResult, retry *time.Duration) error {
	grace := time.NewTimer(openGrace)
	defer grace.Stop()
	opened := func() {
		if w.setSource(SourceEvents) {
			w.cfg.Logf("event stream open")
		}
		*retry = w.cfg.Retry
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err, ok := <-res.Err:
			if !ok || err == nil {
				err = errors.New("stream closed")
			}
			return err
		case <-grace.C:
			opened()
		case _, ok := <-res.Messages:
			if !ok {
				return errors.New("stream closed")
			}
			opened()
			w.mu.Lock()
			w.settleUntil = time.Now().Add(w.cfg.Settle)
			w.mu.Unlock()
			w.Kick()
		}
	}
}

// openGrace is how long a new event stream must live to count as open.
const openGrace = 200 * time.Millisecond

// setSource records where freshness comes from and reports whether it
// changed. The model shows it at the next re-read, which it asks for.
func (w *Watcher) setSource(s string) bool {
	w.mu.Lock()
	changed := w.source != s
	w.source = s
	w.mu.Unlock()
	if changed {
		w.Kick()
	}
	return changed
}

// Refresh re-reads nodes, services and tasks and publishes the model if it
// changed. On failure the last good model stays, with the error.
func (w *Watcher) Refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	st, err := w.read(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.state.Error != err.Error() {
			w.cfg.Logf("reading the swarm: %v", err)
		}
		st = w.state
		st.Error = err.Error()
		st.Generated = time.Now().UTC()
		w.healthy = false
	} else {
		w.healthy = true
	}
	st.Source = w.source
	if model.Same(st, w.state) {
		return
	}
	w.state = st
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *Watcher) read(ctx context.Context) (model.State, error) {
	nodes, err := w.api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return model.State{}, fmt.Errorf("listing nodes: %w", err)
	}
	svcs, err := w.api.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return model.State{}, fmt.Errorf("listing services: %w", err)
	}
	tasks, err := w.api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("desired-state", "running")})
	if err != nil {
		return model.State{}, fmt.Errorf("listing tasks: %w", err)
	}
	st := model.Build(nodes.Items, svcs.Items, tasks.Items)
	st.Generated = time.Now().UTC()
	return st, nil
}
