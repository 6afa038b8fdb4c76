// Package fake is an in-memory Docker engine for the visualizer's unit
// tests: node, service and task lists the test sets, and an event stream it
// feeds or breaks.
package fake

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Engine implements server.API over lists held in memory.
type Engine struct {
	mu        sync.Mutex
	nodes     []swarm.Node
	services  []swarm.Service
	tasks     []swarm.Task
	listErr   error
	eventsErr error
	streams   []*stream
}

type stream struct {
	msgs chan events.Message
	errc chan error
	once sync.Once
}

func (s *stream) fail(err error) { s.once.Do(func() { s.errc <- err }) }

// Set replaces the lists.
func (e *Engine) Set(nodes []swarm.Node, services []swarm.Service, tasks []swarm.Task) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nodes, e.services, e.tasks = nodes, services, tasks
}

// FailLists makes the list calls fail with err (nil: succeed again).
func (e *Engine) FailLists(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listErr = err
}

// FailEvents makes new event streams fail with err (nil: open again).
func (e *Engine) FailEvents(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.eventsErr = err
}

// Emit sends msg on every open event stream.
func (e *Engine) Emit(msg events.Message) {
	e.mu.Lock()
	streams := append([]*stream(nil), e.streams...)
	e.mu.Unlock()
	for _, s := range streams {
		select {
		case s.msgs <- msg:
		case <-time.After(time.Second):
		}
	}
}

// NodeList returns the nodes set.
func (e *Engine) NodeList(ctx context.Context, _ client.NodeListOptions) (client.NodeListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return client.NodeListResult{Items: e.nodes}, e.listErr
}

// ServiceList returns the services set.
func (e *Engine) ServiceList(ctx context.Context, _ client.ServiceListOptions) (client.ServiceListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return client.ServiceListResult{Items: e.services}, e.listErr
}

// TaskList returns the tasks set, honouring a desired-state filter.
func (e *Engine) TaskList(ctx context.Context, opts client.TaskListOptions) (client.TaskListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	want := opts.Filters["desired-state"]
	var out []swarm.Task
	for _, t := range e.tasks {
		if len(want) == 0 || want[string(t.DesiredState)] {
			out = append(out, t)
		}
	}
	return client.TaskListResult{Items: out}, e.listErr
}

// Events opens a stream that Emit feeds until ctx ends or Break.
func (e *Engine) Events(ctx context.Context, _ client.EventsListOptions) client.EventsResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := &stream{msgs: make(chan events.Message), errc: make(chan error, 1)}
	if e.eventsErr != nil {
		st.fail(e.eventsErr)
		return client.EventsResult{Messages: st.msgs, Err: st.errc}
	}
	e.streams = append(e.streams, st)
	go func() {
		<-ctx.Done()
		e.drop(st)
		st.fail(ctx.Err())
	}()
	return client.EventsResult{Messages: st.msgs, Err: st.errc}
}

func (e *Engine) drop(st *stream) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, s := range e.streams {
		if s == st {
			e.streams = append(e.streams[:i], e.streams[i+1:]...)
			return
		}
	}
}

// Break ends every open stream with err, as an engine that goes away does.
func (e *Engine) Break(err error) {
	e.mu.Lock()
	streams := e.streams
	e.streams = nil
	e.mu.Unlock()
	for _, s := range streams {
		s.fail(err)
	}
}

// ErrDown is an engine failure for tests.
var ErrDown = errors.New("cannot connect to the Docker daemon")
