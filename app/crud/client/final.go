package client

import (
	"fmt"
	"slices"
	"strings"

	"github.com/swarmlab/swarmlab/app/crud/history"
)

// FinalCheck is the read-back once the load stopped: every key, one by one,
// must hold its latest acknowledged write.
//
// The latest acknowledged writes of a key are those no other acknowledged
// write began after (concurrent ones may have landed in either order). A
// write whose outcome is unknown may have landed at any time, even after a
// later acknowledged one (a gate may commit after its client gave up), so
// its value is allowed too; values are unique per put, so a value read back
// names the put that wrote it.
type FinalCheck struct {
	Keys    int `json:"keys"`
	Checked int `json:"checked"` // read back
	// Unread are the keys that could not be read back in time.
	Unread []string `json:"unread,omitempty"`
	// Lost: a key holds an older value, nothing, or another version than
	// its latest acknowledged write's.
	Lost []Finding `json:"lost,omitempty"`
	// Unexpected: a key holds a value no put sent, or one whose put was
	// refused; or GET /items?prefix lists a key the run never wrote.
	Unexpected []Finding `json:"unexpected,omitempty"`
	// Uncertain counts keys for which more than one final state was
	// allowed, because of writes whose outcome is unknown.
	Uncertain int `json:"uncertain"`
	// ListErr says why GET /items?prefix could not be checked.
	ListErr string `json:"list_error,omitempty"`
}

// Finding is one key that does not hold what it should.
type Finding struct {
	Key  string `json:"key"`
	Got  string `json:"got"`
	Want string `json:"want"`
}

func (f Finding) String() string { return fmt.Sprintf("%s holds %s, want %s", f.Key, f.Got, f.Want) }

func finalCheck(ops []history.Op, reads map[string]history.Op, keys []string, listed []string, listErr error) FinalCheck {
	fc := FinalCheck{Keys: len(keys)}
	byKey := map[string][]history.Op{}
	for _, op := range ops {
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	for _, k := range keys {
		r, ok := reads[k]
		if !ok {
			fc.Unread = append(fc.Unread, k)
			continue
		}
		fc.Checked++
		lost, unexpected, uncertain := checkKey(byKey[k], r)
		switch {
		case lost != "":
			fc.Lost = append(fc.Lost, Finding{Key: k, Got: describeRead(r), Want: lost})
		case unexpected != "":
			fc.Unexpected = append(fc.Unexpected, Finding{Key: k, Got: describeRead(r), Want: unexpected})
		}
		if uncertain {
			fc.Uncertain++
		}
	}
	if listErr != nil {
		fc.ListErr = listErr.Error()
	}
	for _, k := range listed {
		if !slices.Contains(keys, k) {
			fc.Unexpected = append(fc.Unexpected, Finding{Key: k, Got: "an item listed by GET /items?prefix", Want: "no such key: the run used " + keys[0] + " to " + keys[len(keys)-1]})
		}
	}
	return fc
}

// checkKey compares the read-back r of one key with its operations: lost or
// unexpected say what was wanted instead, and uncertain whether more than
// one final state was allowed.
func checkKey(ops []history.Op, r history.Op) (lost, unexpected string, uncertain bool) {
	var acked, pending []history.Op
	for _, op := range ops {
		if op.Kind == history.Get {
			continue
		}
		switch op.Outcome() {
		case history.Done:
			acked = append(acked, op)
		case history.Pending:
			pending = append(pending, op)
		}
	}
	var latest []history.Op
	for _, w := range acked {
		if !slices.ContainsFunc(acked, func(w2 history.Op) bool { return w2.Invoke > w.Return }) {
			latest = append(latest, w)
		}
	}
	allowed := slices.Concat(latest, pending)
	absent := len(acked) == 0 || slices.ContainsFunc(allowed, func(w history.Op) bool { return w.Kind == history.Delete })
	states := len(allowed)
	if len(acked) == 0 {
		states++ // never written: absent
	}
	uncertain = states > 1

	want := describeWrites(latest, pending)
	if r.Out.Status == 404 {
		if absent {
			return "", "", uncertain
		}
		return want, "", uncertain
	}
	for _, w := range allowed {
		if w.Kind == history.Put && w.Value == r.Out.Value && (w.Outcome() == history.Pending || w.Out.Version == r.Out.Version) {
			return "", "", uncertain
		}
	}
	for _, op := range ops {
		if op.Kind != history.Put || op.Value != r.Out.Value {
			continue
		}
		switch op.Outcome() {
		case history.Done:
			if op.Out.Version != r.Out.Version && slices.Contains(latest, op) {
				return fmt.Sprintf("v%d, the version its put returned (a write applied twice, or one lost and its version given again?)", op.Out.Version), "", uncertain
			}
			return fmt.Sprintf("%s; this value's put was acknowledged at %s, and overwritten after", want, at(op.Return)), "", uncertain
		case history.Refused:
			return "", fmt.Sprintf("%s; this value's put was refused (HTTP %d)", want, op.Out.Status), uncertain
		}
	}
	return "", want + "; no put sent this value", uncertain
}

func describeRead(r history.Op) string {
	if r.Out.Status == 404 {
		return "nothing (404)"
	}
	return fmt.Sprintf("%q v%d", r.Out.Value, r.Out.Version)
}

// describeWrites says which final states were allowed.
func describeWrites(latest, pending []history.Op) string {
	var ws []string
	for _, w := range latest {
		ws = append(ws, describeWrite(w)+" (acknowledged at "+at(w.Return)+")")
	}
	for _, w := range pending {
		ws = append(ws, describeWrite(w)+" (outcome unknown)")
	}
	if len(latest) == 0 {
		ws = append(ws, "nothing (no write acknowledged)")
	}
	const most = 4
	if len(ws) > most {
		ws = append(ws[:most], fmt.Sprintf("%d more", len(ws)-most))
	}
	return strings.Join(ws, " or ")
}

func describeWrite(w history.Op) string {
	if w.Kind == history.Delete {
		return "deleted"
	}
	if w.Outcome() == history.Done {
		return fmt.Sprintf("%q v%d", w.Value, w.Out.Version)
	}
	return fmt.Sprintf("%q", w.Value)
}
