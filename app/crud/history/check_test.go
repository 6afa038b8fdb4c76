package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const checkTimeout = 30 * time.Second

func check(t *testing.T, ops []Op, opts Options) Result {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = checkTimeout
	}
	res := Check(ops, opts)
	t.Logf("%d ops: %s in %s (%d keys, %d unknown ops); %v", len(ops), res.Verdict, res.Elapsed, res.Keys, res.Pending, res.Err())
	return res
}

func wantLinearizable(t *testing.T, res Result) {
	t.Helper()
	if res.Verdict != Linearizable || res.Err() != nil {
		t.Fatalf("verdict %s, want linearizable: %v", res.Verdict, res.Err())
	}
}

// wantIllegal wants a non-linearizable verdict naming only keys the fake
// broke, and an error that names the first.
func wantIllegal(t *testing.T, res Result, broken map[string]bool) {
	t.Helper()
	if res.Verdict != NotLinearizable || len(res.Illegal) == 0 || res.Key != res.Illegal[0] {
		t.Fatalf("verdict %s (illegal %v), want not linearizable; the fake broke %v", res.Verdict, res.Illegal, broken)
	}
	for _, k := range res.Illegal {
		if !broken[k] {
			t.Errorf("key %s is named, but the fake did not break it (it broke %v)", k, broken)
		}
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "key") || !strings.Contains(err.Error(), res.Key) {
		t.Errorf("the error does not name key %s: %v", res.Key, err)
	}
}

// (a) A mutex map is linearizable.
func TestLinearizableStorePasses(t *testing.T) {
	ops := drive(t, newMapStore(), 8, 300, 5)
	wantLinearizable(t, check(t, ops, Options{}))
}

// (b) The broken system: a write is acknowledged by the primary,
// and a read on the lagging replica then returns the value before it.
func TestStaleReadOnALaggingReplicaIsCaught(t *testing.T) {
	s := newLaggingStore(3 * time.Millisecond)
	ops := drive(t, s, 8, 300, 5)
	time.Sleep(2 * s.lag) // let replication finish before reading s.stale
	s.mu.Lock()
	stale := s.stale
	s.mu.Unlock()
	res := check(t, ops, Options{})
	wantIllegal(t, res, stale)
	if res.Witness == "" {
		t.Errorf("no witness named for key %s: a stale read should be plain to see", res.Key)
	}
}

// (c) A store that acknowledges a write and drops it.
func TestDroppedAcknowledgedWriteIsCaught(t *testing.T) {
	s := &droppingStore{mapStore: newMapStore(), drop: every(50)}
	ops := drive(t, s, 8, 300, 5)
	res := check(t, ops, Options{})
	wantIllegal(t, res, s.drop.keys)
	// The witness is found on the failing key the check names first where
	// the history shows it plainly: a dropped write's version given again
	// by the next put. A delete between the two leaves nothing to name
	// there (seen: 1 run in many), so it is asked of every key that lost a
	// write; with some fifty drops, several show it.
	named := res.Witness != ""
	for k := range s.drop.keys {
		named = named || witness(ops, k) != ""
	}
	if !named {
		t.Errorf("no witness named for any key that lost a write (%v): a dropped write's version is given again", s.drop.keys)
	}
}

// A store that applies a write twice: every value reads back as written,
// only the versions show it.
func TestDuplicatedWriteIsCaughtByItsVersion(t *testing.T) {
	s := &doublingStore{mapStore: newMapStore(), twice: every(50)}
	ops := drive(t, s, 8, 300, 5)
	wantIllegal(t, check(t, ops, Options{}), s.twice.keys)
}

// (d) Calls that time out, whether they happened in time, late or never,
// are allowed either way.
func TestTimedOutOperationsMayHaveHappenedOrNot(t *testing.T) {
	s := &timeoutStore{mapStore: newMapStore(), n: 20, fates: map[string]int{}}
	ops := drive(t, s, 8, 300, 5)
	s.wg.Wait()
	t.Logf("timed-out calls: %v", s.fates)
	if s.fates["done"] == 0 || s.fates["late"] == 0 || s.fates["never"] == 0 {
		t.Fatalf("every fate should have happened: %v", s.fates)
	}
	res := check(t, ops, Options{})
	wantLinearizable(t, res)
	if res.Pending == 0 {
		t.Fatal("no unknown operation was checked")
	}
}

// (e) A check that runs out of time is unknown, and an error, never a pass.
func TestCheckThatTimesOutIsUnknown(t *testing.T) {
	// 24 puts whose answers were lost, then a read of a value none of
	// them wrote: to prove that, every order of the puts must be tried.
	var ops []Op
	for i := range 24 {
		ops = append(ops, op(i, Put, "k", fmt.Sprintf("v%d", i), 0, 1, Output{Unknown: true}))
	}
	ops = append(ops, op(24, Get, "k", "", 2, 3, Output{Status: 200, Value: "never written", Version: 1}))
	ops = append(ops, op(25, Put, "other", "x", 0, 1, Output{Status: 200, Value: "x", Version: 1}))
	res := Check(ops, Options{Timeout: 100 * time.Millisecond})
	err := res.Err()
	if res.Verdict != Unknown || !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "not a pass") ||
		!slices.Equal(res.TimedOut, []string{"k"}) {
		t.Fatalf("verdict %s, timed out %v: %v", res.Verdict, res.TimedOut, err)
	}
	if res.Elapsed > 5*time.Second {
		t.Errorf("the check took %s, past its 100ms timeout", res.Elapsed)
	}
}

// op is a hand-made operation, with times in milliseconds.
func op(client int, kind Kind, key, value string, invoke, ret int, out Output) Op {
	return Op{Client: client, Kind: kind, Key: key, Value: value,
		Invoke: time.Duration(invoke) * time.Millisecond, Return: time.Duration(ret) * time.Millisecond, Out: out}
}

func ok(v string, version int64) Output { return Output{Status: 200, Value: v, Version: version} }

var notFound = Output{Status: 404}

// The model, case by case, on hand-made histories of one key.
func TestModel(t *testing.T) {
	pending := Output{Unknown: true}
	for _, c := range []struct {
		name    string
		ops     []Op
		want    Verdict
		witness string
	}{
		{"read your write", []Op{op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(0, Get, "k", "", 2, 3, ok("a", 1))}, Linearizable, ""},
		{"nothing yet", []Op{op(0, Get, "k", "", 0, 1, notFound)}, Linearizable, ""},
		{"stale read", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(0, Put, "k", "b", 2, 3, ok("b", 2)), op(1, Get, "k", "", 4, 5, ok("a", 1)),
		}, NotLinearizable, `returned "a" v1, though put "b" (v2) was acknowledged at +3ms, after that value's put returned (+1ms)`},
		{"concurrent reads may see either", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(0, Put, "k", "b", 2, 6, ok("b", 2)),
			op(1, Get, "k", "", 3, 4, ok("a", 1)), op(2, Get, "k", "", 3, 5, ok("b", 2)),
		}, Linearizable, ""},
		{"new then old", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(0, Put, "k", "b", 2, 6, ok("b", 2)),
			op(1, Get, "k", "", 3, 4, ok("b", 2)), op(2, Get, "k", "", 5, 6, ok("a", 1)),
		}, NotLinearizable, ""},
		{"lost write: not found after an acknowledged put", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(1, Get, "k", "", 2, 3, notFound),
		}, NotLinearizable, `found nothing, though put "a" was acknowledged at +1ms (v1)`},
		{"invented value", []Op{op(1, Get, "k", "", 2, 3, ok("z", 1))}, NotLinearizable, `returned "z" v1, which no put sent`},
		{"duplicated write: one version too far", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(1, Get, "k", "", 2, 3, ok("a", 2)),
		}, NotLinearizable, "but the put of that value returned v1"},
		{"lost write: its version given again", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 4)), op(0, Put, "k", "b", 2, 3, ok("b", 4)),
		}, NotLinearizable, `put "b" at +2ms returned v4, though put "a", invoked before it at +0s, returned v4`},
		{"versions may skip", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(0, Put, "k", "b", 2, 3, ok("b", 5)), op(0, Get, "k", "", 4, 5, ok("b", 5)),
		}, Linearizable, ""},
		{"a put's answer must carry its value", []Op{op(0, Put, "k", "a", 0, 1, ok("b", 1))}, NotLinearizable, ""},
		{"delete", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 3)), op(0, Delete, "k", "", 2, 3, Output{Status: 204}), op(0, Get, "k", "", 4, 5, notFound),
		}, Linearizable, ""},
		{"a re-created item may start at version 1", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 3)), op(0, Delete, "k", "", 2, 3, Output{Status: 204}),
			op(0, Put, "k", "b", 4, 5, ok("b", 1)), op(0, Get, "k", "", 6, 7, ok("b", 1)),
		}, Linearizable, ""},
		{"read after delete", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(0, Delete, "k", "", 2, 3, Output{Status: 204}), op(1, Get, "k", "", 4, 5, ok("a", 1)),
		}, NotLinearizable, "though delete was acknowledged at +3ms"},
		{"delete of nothing: 404", []Op{op(0, Delete, "k", "", 0, 1, notFound)}, Linearizable, ""},
		{"delete 404 after a put", []Op{op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(0, Delete, "k", "", 2, 3, notFound)}, NotLinearizable, ""},
		{"an unknown put may have happened", []Op{
			op(0, Put, "k", "a", 0, 1, pending), op(1, Get, "k", "", 2, 3, ok("a", 7)), op(1, Get, "k", "", 4, 5, ok("a", 7)),
		}, Linearizable, ""},
		{"or not", []Op{op(0, Put, "k", "a", 0, 1, pending), op(1, Get, "k", "", 2, 3, notFound)}, Linearizable, ""},
		{"or later, after the client gave up", []Op{
			op(0, Put, "k", "a", 0, 1, pending), op(1, Get, "k", "", 2, 3, notFound), op(1, Get, "k", "", 4, 5, ok("a", 1)),
		}, Linearizable, ""},
		{"but only once: its version is fixed once read", []Op{
			op(0, Put, "k", "a", 0, 1, pending), op(1, Get, "k", "", 2, 3, ok("a", 7)), op(1, Get, "k", "", 4, 5, ok("a", 8)),
		}, NotLinearizable, ""},
		{"an unknown put's version is above the earlier ones", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 5)), op(0, Put, "k", "b", 2, 3, pending), op(1, Get, "k", "", 4, 5, ok("b", 5)),
		}, NotLinearizable, ""},
		{"a refused put did not happen", []Op{
			op(0, Put, "k", "a", 0, 1, Output{Status: 401}), op(1, Get, "k", "", 2, 3, notFound),
		}, Linearizable, ""},
		{"an unanswered get says nothing", []Op{
			op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(1, Get, "k", "", 2, 3, Output{Unknown: true, Value: "garbage"}),
		}, Linearizable, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := Check(c.ops, Options{Timeout: 10 * time.Second})
			if res.Verdict != c.want {
				t.Fatalf("verdict %s, want %s: %v", res.Verdict, c.want, res.Err())
			}
			if c.want == NotLinearizable && res.Key != "k" {
				t.Errorf("named key %q, want k", res.Key)
			}
			if !strings.Contains(res.Witness, c.witness) {
				t.Errorf("witness %q, want it to contain %q", res.Witness, c.witness)
			}
		})
	}
}

// Keys are checked apart: one broken key is named, among many fine ones.
func TestNamesTheBrokenKeyAmongOthers(t *testing.T) {
	var ops []Op
	for i := range 10 {
		k := fmt.Sprintf("k%d", i)
		ops = append(ops, op(i, Put, k, "a", 0, 1, ok("a", 1)), op(i, Get, k, "", 2, 3, ok("a", 1)))
	}
	ops = append(ops, op(20, Get, "k7", "", 4, 5, notFound), op(21, Get, "k3", "", 4, 5, ok("b", 1)))
	res := Check(ops, Options{Timeout: 10 * time.Second})
	if res.Verdict != NotLinearizable || res.Key != "k3" || !slices.Equal(res.Illegal, []string{"k3", "k7"}) || res.Keys != 10 {
		t.Fatalf("verdict %s, key %s, illegal %v, keys %d", res.Verdict, res.Key, res.Illegal, res.Keys)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "2 of 10 keys are not linearizable (k3, k7), the first k3") {
		t.Fatalf("error: %v", err)
	}
}

// Asked for, the visualization is written: porcupine's HTML, of the
// broken key alone.
func TestVisualization(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.html")
	ops := []Op{
		op(0, Put, "k", "a", 0, 1, ok("a", 1)), op(0, Put, "k", "b", 2, 3, Output{Status: 200, Value: "b", Version: 2, ServedBy: "gate.1/storage.2"}),
		op(1, Get, "k", "", 4, 5, Output{Status: 200, Value: "a", Version: 1, ServedBy: "gate.2/storage.3"}),
		op(2, Put, "fine", "x", 0, 1, ok("x", 1)),
	}
	res := Check(ops, Options{Timeout: 10 * time.Second, VisualizePath: path})
	if res.Visualization != path || res.VisualizeErr != "" {
		t.Fatalf("visualization %q, error %q", res.Visualization, res.VisualizeErr)
	}
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<html", `put(k, \"b\")`, "gate.2/storage.3"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the visualization lacks %q", want)
		}
	}
	if strings.Contains(string(html), "put(fine") {
		t.Error("the visualization shows a key that is linearizable")
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("the error does not say where the visualization is: %v", err)
	}
}
