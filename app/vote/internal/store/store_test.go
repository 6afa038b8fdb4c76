package store

import (
	"testing"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
)

func TestLatestPerVoter(t *testing.T) {
	in := []ballot.Vote{
		{Voter: "x", Choice: 'a', TS: 1, StreamID: "1-0"},
		{Voter: "y", Choice: 'b', TS: 5, StreamID: "2-0"},
		{Voter: "x", Choice: 'b', TS: 3, StreamID: "3-0"},
		{Voter: "x", Choice: 'a', TS: 2, StreamID: "4-0"},
		{Voter: "y", Choice: 'b', TS: 5, StreamID: "2-0"}, // redelivered
	}
	got := latestPerVoter(in)
	if len(got) != 2 || got[0].Voter != "x" || got[0].Choice != 'b' || got[1].Voter != "y" {
		t.Fatalf("%+v", got)
	}
	if in[0].Choice != 'a' || in[2].Voter != "x" {
		t.Fatal("input modified")
	}
}
