// Package history records what clients of the CRUD app asked and were
// answered, and checks that record for linearizability with porcupine.
//
// Every operation is a put, get or delete of one key, from one client, with
// the time it was invoked and the time it returned. An operation whose
// request was sent but never answered (a timeout, a connection broken after
// sending, a 5xx) is unknown: it may or may not have taken effect, now or
// later. The check treats it as porcupine does a pending operation, one that
// returns at infinity, so either outcome is allowed.
package history

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Kind is what an operation does.
type Kind string

const (
	Put    Kind = "put"
	Get    Kind = "get"
	Delete Kind = "delete"
)

// Output is how an operation ended.
type Output struct {
	// Status is the HTTP status of the answer; 0 if there was none.
	Status int `json:"status,omitempty"`
	// Value and Version are the item's, for a put's or a found get's 200.
	Value   string `json:"value,omitempty"`
	Version int64  `json:"version,omitempty"`
	// Unknown: the request was sent and no usable answer came back (a
	// timeout, a connection broken after sending, a 5xx, a 200 whose body
	// could not be read). The operation may or may not have happened.
	Unknown bool `json:"unknown,omitempty"`
	// Err says what went wrong, for reports.
	Err string `json:"err,omitempty"`
	// ServedBy is the answer's X-Served-By: <gate task>/<storage task>.
	ServedBy string `json:"served_by,omitempty"`
}

// Op is one recorded operation. Times are since the history's start.
type Op struct {
	Client int           `json:"client"`
	Kind   Kind          `json:"kind"`
	Key    string        `json:"key"`
	Value  string        `json:"value,omitempty"` // a put's input
	Invoke time.Duration `json:"invoke"`
	// Return is when the answer came, or when the client gave up on an
	// unknown one; NotReturned while still in flight.
	Return time.Duration `json:"return"`
	Out    Output        `json:"out"`
}

// NotReturned is the Return of an operation still in flight.
const NotReturned time.Duration = -1

// Outcome classes an operation for the check.
type Outcome int

const (
	// Done: an answer the model explains (put 200, get 200 or 404,
	// delete 204 or 404).
	Done Outcome = iota
	// Pending: it may or may not have happened (Output.Unknown, or still
	// in flight).
	Pending
	// Refused: it certainly did not happen (a 4xx such as a lost session's
	// 401, or a request that was never sent). The check leaves it out.
	Refused
)

func (o Outcome) String() string {
	switch o {
	case Done:
		return "done"
	case Pending:
		return "pending"
	}
	return "refused"
}

// Outcome says how the check treats op.
func (op Op) Outcome() Outcome {
	if op.Return == NotReturned || op.Out.Unknown {
		return Pending
	}
	switch s := op.Out.Status; {
	case op.Kind == Put && s == 200,
		op.Kind == Get && (s == 200 || s == 404),
		op.Kind == Delete && (s == 204 || s == 404):
		return Done
	}
	return Refused
}

// History is a concurrent-safe record of operations.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// New starts an empty history whose clock starts now.
func New() *History { return &History{start: time.Now()} }

// Start is when the history's clock started: Op times are since then.
func (h *History) Start() time.Time { return h.start }

// Since converts a wall time to the history's clock.
func (h *History) Since(t time.Time) time.Duration { return t.Sub(h.start) }

// Call is an invoked operation, to be returned once.
type Call struct {
	h *History
	i int
}

// Invoke records that client starts an operation now. value is a put's
// input, "" otherwise.
func (h *History) Invoke(client int, kind Kind, key, value string) Call {
	now := time.Since(h.start)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, Op{Client: client, Kind: kind, Key: key, Value: value, Invoke: now, Return: NotReturned})
	return Call{h, len(h.ops) - 1}
}

// Return records that the call ended now with out. A call that is never
// returned stays pending: it counts as unknown.
func (c Call) Return(out Output) {
	now := time.Since(c.h.start)
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	op := &c.h.ops[c.i]
	if op.Return != NotReturned {
		panic("history: operation returned twice")
	}
	op.Return, op.Out = now, out
}

// Op is the call's operation as recorded so far.
func (c Call) Op() Op {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	return c.h.ops[c.i]
}

// Ops returns a copy of every operation so far, in invoke order.
func (h *History) Ops() []Op {
	h.mu.Lock()
	ops := slices.Clone(h.ops)
	h.mu.Unlock()
	slices.SortStableFunc(ops, func(a, b Op) int { return cmp.Compare(a.Invoke, b.Invoke) })
	return ops
}

// Len is how many operations were invoked.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}
