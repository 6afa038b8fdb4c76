package main

import (
	"strings"
	"testing"
)

const clusterA = "d38587ce-246c-11e5-bcce-6bbd0831cc0f"

func db(name, phase, uuid string, seqno int64) Member {
	return Member{Name: name, Addr: "10.0.0." + name[len(name)-1:], Role: roleDB, Phase: phase, UUID: uuid, Seqno: seqno}
}

func running(name, cluster string) Member {
	m := db(name, phaseRunning, clusterA, 10)
	m.Cluster, m.State = cluster, "Synced"
	return m
}

func safe(m Member) Member { m.SafeToBootstrap = true; return m }

var arbitrator = Member{Name: "garbd", Role: roleArbitrator, Phase: phaseRunning, Seqno: -1}

func TestDecide(t *testing.T) {
	empty := func(n string) Member { return db(n, phaseWaiting, "", -1) }
	at := func(n string, seqno int64) Member { return db(n, phaseWaiting, clusterA, seqno) }
	cases := []struct {
		name      string
		self      Member
		peers     []Member
		size      int
		bootstrap string
		want      Action
		because   string
	}{
		// 1. rejoin
		{"a killed member rejoins the one that runs", at("db2", 7), []Member{running("db1", "Primary"), arbitrator}, 2, "", Join, "db1"},
		{"an empty member joins (SST)", empty("db3"), []Member{running("db1", "Primary")}, 3, "", Join, "primary component"},
		{"a running member cut off is no primary to join", at("db1", 7), []Member{running("db2", "non-Primary"), arbitrator}, 2, "", Wait, "1 of 2"},
		{"the arbitrator alone is not a cluster to join", empty("db1"), []Member{arbitrator}, 2, "", Wait, "new cluster"},

		// 2. new cluster
		{"the designated member starts a new cluster alone", empty("db1"), nil, 2, "db1", Bootstrap, "designated"},
		{"with the arbitrator there too", empty("db1"), []Member{arbitrator}, 2, "db1", Bootstrap, "designated"},
		{"the others wait for it", empty("db2"), []Member{empty("db1")}, 2, "db1", Wait, "waiting for db1"},
		{"none designated: wait for all", empty("db1"), nil, 2, "", Wait, "1 of 2"},
		{"none designated: the lowest name", empty("db1"), []Member{empty("db2"), arbitrator}, 2, "", Bootstrap, "lowest name"},
		{"none designated: the others wait", empty("db2"), []Member{empty("db1")}, 2, "", Wait, "waiting for db1"},

		// 3. recovery
		{"the last to leave bootstraps at once", safe(at("db2", 9)), nil, 2, "db1", Bootstrap, "safe_to_bootstrap: 1"},
		{"the others wait for the last to leave", at("db1", 9), []Member{safe(at("db2", 9))}, 2, "db1", Wait, "waiting for db2"},
		{"a member with data waits for all", at("db1", 9), []Member{arbitrator}, 2, "db1", Wait, "1 of 2"},
		{"an empty designated member waits for the one with data", empty("db1"), []Member{at("db2", 3)}, 2, "db1", Wait, "waiting for db2"},
		{"the most advanced bootstraps", at("db2", 12), []Member{at("db1", 11), arbitrator}, 2, "db1", Bootstrap, "most advanced"},
		{"the less advanced waits", at("db1", 11), []Member{at("db2", 12)}, 2, "db1", Wait, "waiting for db2"},
		{"equal: the designated member", at("db2", 12), []Member{at("db1", 12)}, 2, "db2", Bootstrap, "most advanced"},
		{"equal: the designated member, seen from the other", at("db1", 12), []Member{at("db2", 12)}, 2, "db2", Wait, "waiting for db2"},
		{"equal, none designated: the lowest name", at("db1", 12), []Member{at("db2", 12)}, 2, "", Bootstrap, "most advanced"},
		{"an empty member never bootstraps over data", empty("db1"), []Member{at("db2", 5), empty("db3")}, 3, "", Wait, "waiting for db2"},
		{"an unknown position never bootstraps", at("db1", -1), []Member{at("db2", 4)}, 2, "db1", Wait, "db1's data is unknown"},
		{"nor does a known one beside it", at("db2", 4), []Member{at("db1", -1)}, 2, "db1", Wait, "db1's data is unknown"},
		{"unless a human says which", safe(at("db2", 4)), []Member{at("db1", -1)}, 2, "db1", Bootstrap, "safe_to_bootstrap"},
		{"an unknown position may still join", at("db1", -1), []Member{running("db2", "Primary")}, 2, "db1", Join, "db2"},
		{"two histories: refuse", at("db1", 5), []Member{db("db2", phaseWaiting, "6b1f0c1e-0000-11e5-8000-000000000001", 9)}, 2, "", Fail, "different clusters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide(c.self, c.peers, c.size, c.bootstrap)
			if d.Action != c.want || !strings.Contains(d.Reason, c.because) {
				t.Errorf("decide = %s (%s), want %s (%q)", d.Action, d.Reason, c.want, c.because)
			}
		})
	}
}

// Every member of a recovery sees the same peers' states and must pick the same bootstrapper:
// exactly one bootstraps, whatever the order of the answers.
func TestDecideOneBootstrapper(t *testing.T) {
	for _, seqnos := range [][]int64{{5, 5, 5}, {5, 7, 7}, {9, 2, 4}, {-1, 3, 3}} {
		var ms []Member
		for i, s := range seqnos {
			m := db("db"+string(rune('1'+i)), phaseWaiting, clusterA, s)
			if s < 0 {
				m.UUID = ""
			}
			ms = append(ms, m)
		}
		for _, bootstrap := range []string{"", "db1", "db3"} {
			n := 0
			for i, self := range ms {
				var peers []Member
				for j := len(ms) - 1; j >= 0; j-- { // another order than self's
					if j != i {
						peers = append(peers, ms[j])
					}
				}
				if decide(self, peers, len(ms), bootstrap).Action == Bootstrap {
					n++
				}
			}
			if n != 1 {
				t.Errorf("seqnos %v, bootstrap node %q: %d members bootstrap", seqnos, bootstrap, n)
			}
		}
	}
}
