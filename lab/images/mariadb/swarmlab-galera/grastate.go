package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Galera keeps a member's position in the cluster's history in grastate.dat, in the data
// directory:
//
//	# GALERA saved state
//	version: 2.1
//	uuid:    d38587ce-246c-11e5-bcce-6bbd0831cc0f
//	seqno:   42
//	safe_to_bootstrap: 1
//
// uuid names the history (the cluster's state), seqno the last transaction this member
// committed. A clean shutdown writes the seqno; a running or killed server leaves -1 there, and
// the real position is then in InnoDB, where `mariadbd --wsrep-recover` reads it
// (parseRecovered). safe_to_bootstrap is 1 only on the last member to leave the primary
// component cleanly: the one that surely has every transaction. mariadbd refuses
// --wsrep-new-cluster where it is 0, so the bootstrap decision (decide.go) sets it on the member
// it picks (setSafeToBootstrap).

// zeroUUID is the uuid of a member that never joined a cluster.
const zeroUUID = "00000000-0000-0000-0000-000000000000"

// grastate is what grastate.dat says.
type grastate struct {
	UUID            string // "" when there is no grastate.dat or it names no cluster
	Seqno           int64  // -1: unknown (running, killed, or never joined)
	SafeToBootstrap bool
}

// parseGrastate reads the text of a grastate.dat.
func parseGrastate(text string) (grastate, error) {
	st := grastate{Seqno: -1}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "uuid":
			if val != zeroUUID {
				st.UUID = val
			}
		case "seqno":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return st, fmt.Errorf("grastate.dat: seqno %q: %v", val, err)
			}
			st.Seqno = n
		case "safe_to_bootstrap":
			st.SafeToBootstrap = val == "1"
		}
	}
	return st, sc.Err()
}

// readGrastate reads path; a missing file is the state of a member with no data.
func readGrastate(path string) (grastate, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return grastate{Seqno: -1}, nil
	}
	if err != nil {
		return grastate{}, err
	}
	return parseGrastate(string(b))
}

var safeLine = regexp.MustCompile(`(?m)^safe_to_bootstrap:.*$`)

// withSafeToBootstrap returns the text of a grastate.dat with safe_to_bootstrap set to 1.
func withSafeToBootstrap(text string) string {
	if safeLine.MatchString(text) {
		return safeLine.ReplaceAllString(text, "safe_to_bootstrap: 1")
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text + "safe_to_bootstrap: 1\n"
}

// setSafeToBootstrap marks the member of path as the one to bootstrap the cluster from.
func setSafeToBootstrap(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(withSafeToBootstrap(string(b))), 0o660)
}

// recovered matches the line of `mariadbd --wsrep-recover` that gives InnoDB's position:
// "[Note] WSREP: Recovered position: d38587ce-246c-11e5-bcce-6bbd0831cc0f:42".
var recovered = regexp.MustCompile(`WSREP: Recovered position:\s*([0-9a-f-]{36}):(-?\d+)`)

// parseRecovered finds the recovered position in the error log of `mariadbd --wsrep-recover`
// (the last one, if there are several).
func parseRecovered(log string) (uuid string, seqno int64, ok bool) {
	all := recovered.FindAllStringSubmatch(log, -1)
	if len(all) == 0 {
		return "", -1, false
	}
	m := all[len(all)-1]
	n, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return "", -1, false
	}
	if m[1] == zeroUUID {
		return "", n, true
	}
	return m[1], n, true
}
