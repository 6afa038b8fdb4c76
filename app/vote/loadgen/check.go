package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// cookieName is the vote page's cookie (frontend.CookieName), by which
// /api/voter knows whom to answer for.
const cookieName = "voter_id"

// voterReaders is how many voters are read back at once.
const voterReaders = 16

// tallyAttempts bounds how often the voters are read again because the
// tally moved meanwhile (a late vote was still being counted).
const tallyAttempts = 3

// unread marks a voter whose counted vote could not be read.
const unread = 0xff

// ErrInconclusive is what Verdict wraps when nothing is known to be wrong
// but too little was proven.
var ErrInconclusive = errors.New("inconclusive")

// checkVoters reads back every voter who voted and classifies each. It
// reads the tally before and after, and trusts the comparison of the two
// views only if the tally did not move in between.
func (cfg *Config) checkVoters(ctx context.Context, voters []voter, rep *Report) error {
	var got []byte
	for range tallyAttempts {
		before, err := cfg.tallyNow(ctx)
		if err != nil {
			return err
		}
		got = cfg.readVoters(ctx, voters)
		if err := ctx.Err(); err != nil {
			return err
		}
		after, err := cfg.tallyNow(ctx)
		if err != nil {
			return err
		}
		rep.Observed = after
		if rep.TallySteady = before == after; rep.TallySteady {
			break
		}
	}

	rep.Checked, rep.Unread, rep.Counted = 0, 0, Tally{}
	rep.Lost, rep.Unexpected = Voters{}, Voters{}
	for i, v := range voters {
		if !v.used {
			continue
		}
		c := got[i]
		if c == unread {
			rep.Unread++
			continue
		}
		rep.Checked++
		switch c {
		case 'a':
			rep.Counted.A++
		case 'b':
			rep.Counted.B++
		}
		set, none := v.allowed()
		switch {
		case c == 0 && none, c != 0 && set&bit(c) != 0:
			// as acknowledged, or as a vote whose outcome is unknown
		case c != 0 && v.ever&bit(c) == 0:
			rep.Unexpected.add(cfg.voterID(i))
		default:
			// Nothing counted, or a vote that a later acknowledged one
			// replaced: the latest acknowledged vote is lost.
			rep.Lost.add(cfg.voterID(i))
		}
	}
	rep.Counted.Total = rep.Counted.A + rep.Counted.B
	o, b, c := rep.Observed, rep.Baseline, rep.Counted
	rep.TallyDiff = Tally{A: o.A - b.A - c.A, B: o.B - b.B - c.B}
	rep.TallyDiff.Total = rep.TallyDiff.A + rep.TallyDiff.B
	return nil
}

// tallyNow reads the tally, retrying for a while: right after faults the
// results service may be restarting.
func (cfg *Config) tallyNow(ctx context.Context) (Tally, error) {
	var t Tally
	var last error
	for range 20 {
		if t, last = fetchTally(ctx, cfg.Client, cfg.ResultsURL); last == nil {
			return t, nil
		}
		if ctx.Err() != nil {
			return t, ctx.Err()
		}
		time.Sleep(500 * time.Millisecond)
	}
	return t, fmt.Errorf("reading the tally for the voter check: %w", last)
}

// readVoters returns every used voter's counted vote ('a', 'b', 0 for none,
// unread if it could not be read in time: cfg.Timeout, and at least a
// minute, since a big run's voters take a while to read).
func (cfg *Config) readVoters(ctx context.Context, voters []voter) []byte {
	got := make([]byte, len(voters))
	ctx, cancel := context.WithTimeout(ctx, max(cfg.Timeout, time.Minute))
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	for range voterReaders {
		wg.Go(func() {
			for i := range next {
				got[i] = cfg.readVoterRetrying(ctx, cfg.voterID(i))
			}
		})
	}
	for i, v := range voters {
		if v.used {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	return got
}

func (cfg *Config) readVoterRetrying(ctx context.Context, id string) byte {
	pause := 50 * time.Millisecond
	for {
		c, err := readVoter(ctx, cfg.Client, cfg.ResultsURL, id)
		if err == nil {
			return c
		}
		select {
		case <-ctx.Done():
			return unread
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// readVoter asks the results service what it counts for voter id.
func readVoter(ctx context.Context, c *http.Client, base, id string) (byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/voter", nil)
	if err != nil {
		return 0, err
	}
	req.AddCookie(&http.Cookie{Name: cookieName, Value: id})
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return 0, fmt.Errorf("voter %s: HTTP %d", id, resp.StatusCode)
	}
	var v struct {
		VoterID string  `json:"voter_id"`
		Vote    *string `json:"vote"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, fmt.Errorf("voter %s: %w", id, err)
	}
	switch {
	case v.VoterID != id:
		return 0, fmt.Errorf("asked for voter %s, answered for %q", id, v.VoterID)
	case v.Vote == nil:
		return 0, nil
	case *v.Vote == "a" || *v.Vote == "b":
		return (*v.Vote)[0], nil
	}
	return 0, fmt.Errorf("voter %s: vote %q, want \"a\", \"b\" or null", id, *v.Vote)
}

// Verdict is the one check of a run: nil if every voter checked is counted
// as acknowledged (or as an unknown outcome allows), the tally agrees, and
// enough was proven. Otherwise it names what is wrong, with counts and
// examples; a run that found nothing wrong but proved too little gives an
// error wrapping ErrInconclusive.
func (r Report) Verdict() error {
	var bad []string
	if r.Lost.Count > 0 {
		bad = append(bad, fmt.Sprintf("lost %d acknowledged votes (the voter is counted with none or an older vote), e.g. %s",
			r.Lost.Count, strings.Join(r.Lost.Examples, " ")))
	}
	if r.Unexpected.Count > 0 {
		bad = append(bad, fmt.Sprintf("%d unexpected votes (counted for a voter who never sent it, or had it refused), e.g. %s",
			r.Unexpected.Count, strings.Join(r.Unexpected.Examples, " ")))
	}
	if r.TallySteady && (r.TallyDiff != Tally{}) {
		bad = append(bad, fmt.Sprintf("the tally moved by a=%+d b=%+d, but this run's voters are counted a=%d b=%d",
			r.Observed.A-r.Baseline.A, r.Observed.B-r.Baseline.B, r.Counted.A, r.Counted.B))
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}

	var why []string
	if r.Sent == 0 {
		why = append(why, "no vote was sent")
	} else if float64(r.Accepted) < r.MinAccepted*float64(r.Sent) {
		why = append(why, fmt.Sprintf("%d of %d votes sent (%.1f%%) were acknowledged, under the floor of %.1f%%",
			r.Accepted, r.Sent, pctOf(r.Accepted, r.Sent), 100*r.MinAccepted))
	}
	if float64(r.Uncertain.Count) > r.MaxUncertain*float64(r.Voters) {
		why = append(why, fmt.Sprintf("%d of %d voters (%.1f%%) are uncertain, over the ceiling of %.1f%%, e.g. %s",
			r.Uncertain.Count, r.Voters, pctOf(r.Uncertain.Count, r.Voters), 100*r.MaxUncertain, strings.Join(r.Uncertain.Examples, " ")))
	}
	if r.Unread > 0 {
		why = append(why, fmt.Sprintf("%d of %d voters could not be read back from /api/voter", r.Unread, r.Voters))
	}
	if !r.TallySteady {
		why = append(why, fmt.Sprintf("the tally kept moving while the voters were read (%d times)", tallyAttempts))
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: %s", ErrInconclusive, strings.Join(why, "; "))
	}
	return nil
}

func pctOf(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
