package history

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// The model is one register per key, with the store's version counter.
//
// Values alone would let a duplicated write pass (applied twice, the item
// reads back with the value its put returned but one version further on)
// and so would a write lost behind a later one that reuses its version. So
// the model also checks versions, as far as the API promises them: a put's
// version is greater than that of every put linearized before it on the key
// since the key was last deleted (gaps are allowed: a put whose answer was
// lost still used a version, and the edge may retry one), and a get returns
// exactly the version of the put whose value it returns. A delete forgets
// the counter, because a store may start a re-created item at version 1.

// input is a porcupine operation's input.
type input struct {
	kind  Kind
	key   string
	value string // a put's
}

// output is a porcupine operation's output.
type output struct {
	pending bool   // may or may not have happened
	found   bool   // get 200, delete 204 (not 404)
	value   string // put, found get
	version int64  // put, found get
}

// state is one key's register.
type state struct {
	exists  bool
	value   string
	version int64
	// known is false after a pending put took effect: its version is
	// unknown, only that it is at least floor-1.
	known bool
	// floor is the least version the next put may return.
	floor int64
}

func step(st, in, out any) (bool, any) {
	s, i, o := st.(state), in.(input), out.(output)
	switch i.kind {
	case Put:
		if o.pending {
			return true, state{exists: true, value: i.value, floor: s.floor + 1}
		}
		ok := o.value == i.value && o.version >= s.floor
		return ok, state{exists: true, value: i.value, version: o.version, known: true, floor: o.version + 1}
	case Get:
		switch {
		case o.pending:
			return true, s
		case !o.found:
			return !s.exists, s
		case !s.exists || o.value != s.value:
			return false, s
		case s.known:
			return o.version == s.version, s
		case o.version < s.floor-1:
			return false, s
		}
		// The first read of a pending put's value tells its version.
		return true, state{exists: true, value: s.value, version: o.version, known: true, floor: max(s.floor, o.version+1)}
	case Delete:
		if !o.pending && !o.found {
			return !s.exists, s
		}
		return true, state{}
	}
	panic("history: unknown kind " + string(i.kind))
}

func hashState(st any) uint64 {
	s := st.(state)
	h := fnv.New64a()
	fmt.Fprintf(h, "%t\x00%s\x00%d\x00%t\x00%d", s.exists, s.value, s.version, s.known, s.floor)
	return h.Sum64()
}

func describeOperation(in, out any) string {
	i, o := in.(input), out.(output)
	var res string
	switch {
	case o.pending:
		res = "unknown"
	case i.kind == Put || o.found && i.kind == Get:
		res = fmt.Sprintf("%q v%d", o.value, o.version)
	case i.kind == Delete && o.found:
		res = "deleted"
	default:
		res = "not found"
	}
	if i.kind == Put {
		return fmt.Sprintf("put(%s, %q) → %s", i.key, i.value, res)
	}
	return fmt.Sprintf("%s(%s) → %s", i.kind, i.key, res)
}

func describeState(st any) string {
	s := st.(state)
	switch {
	case !s.exists:
		return "absent"
	case !s.known:
		return fmt.Sprintf("%q v≥%d", s.value, s.floor-1)
	}
	return fmt.Sprintf("%q v%d", s.value, s.version)
}

// Model is the per-key register model, partitioned by key: porcupine checks
// each key on its own.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition:      partition,
		PartitionEvent: partitionEvent,
		Init:           func() any { return state{} },
		Step:           step,
		Hash:           hashState,
		// Equal: state is comparable, porcupine's == fallback is right.
		DescribeOperation:         describeOperation,
		DescribeState:             describeState,
		DescribeOperationMetadata: func(m any) string { s, _ := m.(string); return s },
	}
}

func partition(ops []porcupine.Operation) [][]porcupine.Operation {
	return groupByKey(ops, func(op porcupine.Operation) string { return op.Input.(input).key })
}

func partitionEvent(evs []porcupine.Event) [][]porcupine.Event {
	// A return's Value is an output: its key is its call's.
	keys := map[int]string{}
	return groupByKey(evs, func(e porcupine.Event) string {
		if e.Kind == porcupine.CallEvent {
			keys[e.Id] = e.Value.(input).key
		}
		return keys[e.Id]
	})
}

// groupByKey splits items by key, keeping their order, in key order.
func groupByKey[T any](items []T, key func(T) string) [][]T {
	by := map[string][]T{}
	for _, it := range items {
		k := key(it)
		by[k] = append(by[k], it)
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([][]T, len(keys))
	for i, k := range keys {
		out[i] = by[k]
	}
	return out
}

// Operations converts ops for porcupine: a pending operation returns at
// infinity, a refused one is left out, and so is a pending get, which
// constrains nothing. Each client is one process until it has an operation
// pending; its next operations are a new process's, as Jepsen does after a
// crash, so that the visualization shows each process's operations one
// after another.
func Operations(ops []Op) []porcupine.Operation {
	procOf := map[int]int{}
	next := 0
	var out []porcupine.Operation
	for _, op := range ops {
		oc := op.Outcome()
		if oc == Refused || oc == Pending && op.Kind == Get {
			continue
		}
		p, ok := procOf[op.Client]
		if !ok {
			p = next
			next++
			procOf[op.Client] = p
		}
		o := output{pending: oc == Pending}
		ret := int64(math.MaxInt64)
		if !o.pending {
			ret = int64(op.Return)
			o.found = op.Out.Status != 404
			o.value, o.version = op.Out.Value, op.Out.Version
		} else {
			delete(procOf, op.Client)
		}
		out = append(out, porcupine.Operation{
			ClientId: p,
			Input:    input{kind: op.Kind, key: op.Key, value: op.Value},
			Call:     int64(op.Invoke),
			Output:   o,
			Return:   ret,
			Metadata: metadata(op),
		})
	}
	return out
}

func metadata(op Op) string {
	s := "client " + strconv.Itoa(op.Client)
	if op.Out.ServedBy != "" {
		s += ", served by " + op.Out.ServedBy
	}
	if op.Out.Err != "" {
		s += ", " + op.Out.Err
	}
	return s
}
