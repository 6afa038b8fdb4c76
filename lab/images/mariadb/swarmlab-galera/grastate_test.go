package main

import (
	"os"
	"path/filepath"
	"testing"
)

const cleanState = `# GALERA saved state
version: 2.1
uuid:    d38587ce-246c-11e5-bcce-6bbd0831cc0f
seqno:   42
safe_to_bootstrap: 0
`

func TestParseGrastate(t *testing.T) {
	cases := map[string]grastate{
		cleanState: {UUID: clusterA, Seqno: 42},
		"uuid: d38587ce-246c-11e5-bcce-6bbd0831cc0f\nseqno: -1\nsafe_to_bootstrap: 1\n": {UUID: clusterA, Seqno: -1, SafeToBootstrap: true},
		"uuid: 00000000-0000-0000-0000-000000000000\nseqno: -1\n":                       {Seqno: -1},
		"": {Seqno: -1},
	}
	for text, want := range cases {
		got, err := parseGrastate(text)
		if err != nil || got != want {
			t.Errorf("parseGrastate(%q) = %+v, %v, want %+v", text, got, err, want)
		}
	}
	if _, err := parseGrastate("seqno: x\n"); err == nil {
		t.Error("a bad seqno is no error")
	}
}

func TestSetSafeToBootstrap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grastate.dat")
	if st, err := readGrastate(path); err != nil || st.UUID != "" || st.Seqno != -1 {
		t.Fatalf("no file: %+v, %v", st, err)
	}
	os.WriteFile(path, []byte(cleanState), 0o660)
	if err := setSafeToBootstrap(path); err != nil {
		t.Fatal(err)
	}
	st, err := readGrastate(path)
	if err != nil || !st.SafeToBootstrap || st.Seqno != 42 || st.UUID != clusterA {
		t.Errorf("after setSafeToBootstrap: %+v, %v", st, err)
	}
	// an old grastate.dat without the line gets it
	if got := withSafeToBootstrap("uuid: x\nseqno: 1"); got != "uuid: x\nseqno: 1\nsafe_to_bootstrap: 1\n" {
		t.Errorf("withSafeToBootstrap: %q", got)
	}
}

func TestParseRecovered(t *testing.T) {
	log := `2025-01-01  9:00:00 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=46846
2025-01-01  9:00:01 0 [Note] WSREP: Recovered position: d38587ce-246c-11e5-bcce-6bbd0831cc0f:1234
`
	if u, n, ok := parseRecovered(log); !ok || u != clusterA || n != 1234 {
		t.Errorf("parseRecovered = %s, %d, %v", u, n, ok)
	}
	if u, n, ok := parseRecovered("[Note] WSREP: Recovered position: 00000000-0000-0000-0000-000000000000:-1\n"); !ok || u != "" || n != -1 {
		t.Errorf("no position: %q %d %v", u, n, ok)
	}
	if _, _, ok := parseRecovered("[ERROR] Aborting\n"); ok {
		t.Error("found a position in a log without one")
	}
}
