package ballot

import (
	"strings"
	"testing"
)

func TestLater(t *testing.T) {
	v := Vote{Voter: "x", Choice: 'a', TS: 100, Source: "r1", StreamID: "5-0"}
	for _, tc := range []struct {
		name string
		w    Vote
		want bool // w later than v
	}{
		{"same vote (redelivery)", v, false},
		{"later ts", Vote{TS: 101, Source: "r0", StreamID: "1-0"}, true},
		{"earlier ts", Vote{TS: 99, Source: "r9", StreamID: "9-9"}, false},
		{"tie: larger stream ms", Vote{TS: 100, Source: "r0", StreamID: "6-0"}, true},
		{"tie: stream seq numeric, not text", Vote{TS: 100, Source: "r1", StreamID: "5-10"}, true},
		{"tie: ms numeric, not text", Vote{TS: 100, Source: "r1", StreamID: "10-0"}, true},
		{"tie: source", Vote{TS: 100, Source: "r2", StreamID: "5-0"}, true},
		{"tie: smaller source", Vote{TS: 100, Source: "r0", StreamID: "5-0"}, false},
	} {
		if got := Later(tc.w, v); got != tc.want {
			t.Errorf("%s: Later = %v, want %v", tc.name, got, tc.want)
		}
		if tc.want && Later(v, tc.w) {
			t.Errorf("%s: order not antisymmetric", tc.name)
		}
	}
}

func TestValidVoterID(t *testing.T) {
	for id, want := range map[string]bool{
		"0123456789abcdef0123456789abcdef": true,
		"lg-1a2b:17.x_y":                   true,
		strings.Repeat("z", 64):            true,
		strings.Repeat("z", 65):            false,
		"":                                 false,
		"a b":                              false,
		`a"b`:                              false,
		"a,b":                              false,
		"é":                                false,
	} {
		if got := ValidVoterID(id); got != want {
			t.Errorf("ValidVoterID(%q) = %v", id, got)
		}
	}
}

func TestParse(t *testing.T) {
	v, err := Parse("r1", "7-1", map[string]any{"voter": "x", "vote": "b", "ts": "1700000000123456789"})
	if err != nil || v != (Vote{Voter: "x", Choice: 'b', TS: 1700000000123456789, Source: "r1", StreamID: "7-1"}) {
		t.Fatalf("%+v %v", v, err)
	}
	for _, f := range []map[string]any{
		{"voter": "x", "vote": "c", "ts": "1"},
		{"voter": "", "vote": "a", "ts": "1"},
		{"voter": "x", "vote": "a", "ts": "soon"},
		{"voter": "x", "vote": "a"},
		nil,
	} {
		if _, err := Parse("r", "1-0", f); err == nil {
			t.Errorf("Parse(%v) accepted", f)
		}
	}
}

func TestNowStrictlyIncreasing(t *testing.T) {
	last := Now()
	for range 100000 {
		n := Now()
		if n <= last {
			t.Fatalf("Now went from %d to %d", last, n)
		}
		last = n
	}
}
