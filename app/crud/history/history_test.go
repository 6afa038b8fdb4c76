package history

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// Concurrent clients record into one history; an operation never returned
// stays pending, and Ops come back in invoke order.
func TestRecorder(t *testing.T) {
	h := New()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for range 100 {
				call := h.Invoke(c, Put, "k", "v")
				call.Return(Output{Status: 200, Value: "v", Version: 1})
			}
		})
	}
	wg.Wait()
	h.Invoke(9, Get, "k", "") // its client died
	ops := h.Ops()
	if len(ops) != 801 || h.Len() != 801 {
		t.Fatalf("%d ops", len(ops))
	}
	for i, op := range ops {
		if i > 0 && op.Invoke < ops[i-1].Invoke {
			t.Fatalf("op %d invoked at %s, before op %d at %s", i, op.Invoke, i-1, ops[i-1].Invoke)
		}
		if op.Client != 9 && (op.Return < op.Invoke || op.Outcome() != Done) {
			t.Fatalf("op %d: %+v", i, op)
		}
	}
	last := ops[800]
	if last.Client != 9 || last.Return != NotReturned || last.Outcome() != Pending {
		t.Fatalf("the op never returned is %+v, outcome %s", last, last.Outcome())
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "twice") {
			t.Fatalf("returning twice: %v", r)
		}
	}()
	call := h.Invoke(0, Get, "k", "")
	call.Return(Output{Status: 404})
	call.Return(Output{Status: 404})
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		out  Output
		want Outcome
	}{
		{Put, Output{Status: 200}, Done},
		{Put, Output{Status: 201}, Refused},
		{Put, Output{Status: 401}, Refused},
		{Put, Output{Status: 0, Err: "connection refused"}, Refused}, // never sent
		{Put, Output{Unknown: true, Status: 502}, Pending},
		{Get, Output{Status: 200}, Done},
		{Get, Output{Status: 404}, Done},
		{Get, Output{Status: 401}, Refused},
		{Delete, Output{Status: 204}, Done},
		{Delete, Output{Status: 404}, Done},
		{Delete, Output{Unknown: true, Err: "timeout"}, Pending},
	} {
		op := Op{Kind: c.kind, Out: c.out, Return: time.Second}
		if got := op.Outcome(); got != c.want {
			t.Errorf("%s %+v: %s, want %s", c.kind, c.out, got, c.want)
		}
	}
}

// A pending operation returns at infinity for porcupine, a refused one and
// a pending get are left out, and a client is a new process after a
// pending operation.
func TestOperations(t *testing.T) {
	ops := []Op{
		op(0, Put, "k", "a", 0, 1, ok("a", 1)),
		op(0, Put, "k", "b", 2, 3, Output{Unknown: true}),
		op(0, Get, "k", "", 4, 5, ok("b", 2)),
		op(0, Get, "k", "", 6, 7, Output{Unknown: true}),
		op(1, Put, "k", "c", 0, 1, Output{Status: 401}),
		op(1, Get, "k", "", 2, 3, notFound),
	}
	pops := Operations(ops)
	if len(pops) != 4 {
		t.Fatalf("%d operations, want 4: %+v", len(pops), pops)
	}
	if pops[1].Return != math.MaxInt64 || pops[0].Return != int64(time.Millisecond) {
		t.Errorf("returns %d and %d", pops[0].Return, pops[1].Return)
	}
	if ids := []int{pops[0].ClientId, pops[1].ClientId, pops[2].ClientId, pops[3].ClientId}; ids[0] != 0 || ids[1] != 0 || ids[2] == 0 || ids[3] == ids[2] || ids[3] == 0 {
		t.Errorf("client ids %v: want client 0 a new process after its pending put, client 1 its own", ids)
	}
}

func TestBench(t *testing.T) {
	var ops []Op
	for i := range 100 { // 100 gets of 1..100 ms, one every 10 ms
		ops = append(ops, op(0, Get, "k", "", 10*i, 10*i+i+1, notFound))
	}
	for i := range 10 {
		ops = append(ops, op(1, Put, "k", "v", 100*i, 100*i+5, ok("v", int64(i+1))))
	}
	ops = append(ops, op(1, Delete, "k", "", 0, 10, Output{Unknown: true}))
	b := Bench(ops)
	// From 0 to the last get's answer at 990+100 ms.
	if b.Seconds != 1.09 {
		t.Fatalf("seconds %v", b.Seconds)
	}
	if b.Reads.Done != 100 || b.Reads.Failed != 0 || b.Reads.P50ms != 51 || b.Reads.P99ms != 100 {
		t.Errorf("reads %+v", b.Reads)
	}
	if b.Writes.Done != 10 || b.Writes.Failed != 1 || b.Writes.P50ms != 5 || b.Writes.P99ms != 5 {
		t.Errorf("writes %+v", b.Writes)
	}
	if r := b.Reads.PerSec; math.Abs(r-100/1.09) > 1e-9 {
		t.Errorf("reads/s %v", r)
	}
	if s := b.String(); !strings.Contains(s, "reads 92/s (p50 51.0 ms, p99 100.0 ms, 0 failed), writes 9/s") {
		t.Errorf("String: %s", s)
	}
	if (Bench(nil) != Benchmark{}) {
		t.Error("an empty history measured something")
	}
}
