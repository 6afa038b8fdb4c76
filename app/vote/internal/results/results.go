// Package results serves the running tally. The tally reads only the two-row
// tally table, never the votes, so its cost does not grow with the
// electorate; /api/voter reads one voter's row by primary key.
package results

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
	"github.com/swarmlab/swarmlab/app/vote/internal/frontend"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
)

// Source supplies the current tally and what is counted for one voter.
type Source interface {
	Tally(ctx context.Context) (store.Tally, error)
	// Voter returns the counted vote of voter: 'a', 'b', or 0 for none.
	Voter(ctx context.Context, voter string) (byte, error)
}

// voterConns is how many voter lookups one results task runs at once: a
// checker reading thousands of voters gets parallelism, while Postgres sees
// a few connections per task at most.
const voterConns = 4

// DB reads the tally over one Postgres connection. Readers share a result
// for up to MaxAge, so a crowd of open result pages costs Postgres one tiny
// query per MaxAge, not one per viewer.
type DB struct {
	MaxAge time.Duration

	mu     sync.Mutex
	conn   *store.Conn
	last   store.Tally
	lastAt time.Time

	// idle connections for Voter, apart from the tally's so that voter
	// lookups never hold up the results page.
	voters chan *store.Conn
}

func NewDB(cfg store.Config, maxAge time.Duration) *DB {
	d := &DB{MaxAge: maxAge, conn: store.NewConn(cfg), voters: make(chan *store.Conn, voterConns)}
	for range voterConns {
		d.voters <- store.NewConn(cfg)
	}
	return d
}

// Voter reads what Postgres counts for voter now, uncached: a checker asks
// right after the votes settled and must not see an older answer.
func (d *DB) Voter(ctx context.Context, voter string) (byte, error) {
	var c *store.Conn
	select {
	case c = <-d.voters:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { d.voters <- c }()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	pc, err := c.Get(ctx)
	if err != nil {
		c.Reset()
		return 0, err
	}
	v, err := store.ReadVoter(ctx, pc, voter)
	if err != nil {
		c.Reset()
	}
	return v, err
}

func (d *DB) Tally(ctx context.Context) (store.Tally, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.lastAt.IsZero() && time.Since(d.lastAt) < d.MaxAge {
		return d.last, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := d.conn.Get(ctx)
	if err == nil {
		d.last, err = store.ReadTally(ctx, c)
	}
	if err != nil {
		d.conn.Reset()
		return store.Tally{}, err
	}
	d.lastAt = time.Now()
	return d.last, nil
}

// Close closes the connections; call it once no request is being served.
func (d *DB) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn.Reset()
	for range voterConns {
		c := <-d.voters
		c.Reset()
		d.voters <- c
	}
}

// Result is the JSON shape of /api/results.
type Result struct {
	A     int64 `json:"a"`
	B     int64 `json:"b"`
	Total int64 `json:"total"`
}

func fromTally(t store.Tally) Result { return Result{A: t.A, B: t.B, Total: t.A + t.B} }

// Server serves the results page and API.
type Server struct {
	Src              Source
	OptionA, OptionB string
	Every            time.Duration // server-sent event period (default 1s)
}

func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /api/results", s.results)
	mux.HandleFunc("GET /api/stream", s.stream)
	mux.HandleFunc("GET /api/voter", s.voter)
	mux.HandleFunc("GET /healthz", s.health)
	return mux
}

func (s *Server) results(w http.ResponseWriter, r *http.Request) {
	t, err := s.Src.Tally(r.Context())
	if err != nil {
		http.Error(w, `{"error":"tally unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(fromTally(t))
}

// VoterResult is the JSON shape of /api/voter. Vote is "a", "b", or null
// when nothing is counted for the voter.
type VoterResult struct {
	VoterID string  `json:"voter_id"`
	Vote    *string `json:"vote"`
}

// voter answers what is counted for the voter named by the voter_id cookie,
// the one the vote page set. The id comes only from the cookie, and there is
// no listing: a browser sees its own vote, and anyone else would have to
// guess 128 random bits.
func (s *Server) voter(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	c, err := r.Cookie(frontend.CookieName)
	if err != nil || !ballot.ValidVoterID(c.Value) {
		jsonError(w, http.StatusBadRequest, "cookie "+frontend.CookieName+
			" must hold a voter id: 1-64 characters of A-Z a-z 0-9 . _ : -")
		return
	}
	v, err := s.Src.Voter(r.Context(), c.Value)
	if err != nil {
		jsonError(w, http.StatusServiceUnavailable, "votes unavailable")
		return
	}
	out := VoterResult{VoterID: c.Value}
	if v != 0 {
		choice := string(v)
		out.Vote = &choice
	}
	json.NewEncoder(w).Encode(out)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// stream pushes the tally as server-sent events whenever it changes, and a
// comment now and then so proxies keep the connection open.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	every := s.Every
	if every <= 0 {
		every = time.Second
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last Result
	sent, quiet := false, 0
	for {
		if t, err := s.Src.Tally(r.Context()); err == nil {
			if cur := fromTally(t); !sent || cur != last {
				b, _ := json.Marshal(cur)
				fmt.Fprintf(w, "data: %s\n\n", b)
				last, sent, quiet = cur, true, 0
			}
		}
		if quiet++; quiet >= 15 {
			io.WriteString(w, ": keep-alive\n\n")
			quiet = 0
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Src.Tally(r.Context()); err != nil {
		http.Error(w, "postgres: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, s)
}

var pageTmpl = template.Must(template.New("results").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.OptionA}} vs {{.OptionB}}: results</title>
<style>
body{font-family:sans-serif;max-width:36rem;margin:3rem auto;text-align:center;color:#222}
.bar{display:flex;height:3rem;border-radius:.5rem;overflow:hidden;margin:1.5rem 0;background:#ddd}
.a{background:#0a7bbf}.b{background:#e0701b}.bar div{transition:width .5s}
.row{display:flex;justify-content:space-between;font-size:1.3rem}
#status{color:#777;font-size:.9rem}
</style></head><body>
<h1>{{.OptionA}} vs {{.OptionB}}</h1>
<div class="bar"><div id="ba" class="a" style="width:50%"></div><div id="bb" class="b" style="width:50%"></div></div>
<div class="row"><span>{{.OptionA}}: <b id="a">0</b> (<span id="pa">-</span>)</span>
<span>{{.OptionB}}: <b id="b">0</b> (<span id="pb">-</span>)</span></div>
<p>Total votes: <b id="total">0</b></p>
<p id="status">connecting…</p>
<script>
function show(r){
  var t=r.total||0, pa=t?100*r.a/t:50;
  document.getElementById('a').textContent=r.a;
  document.getElementById('b').textContent=r.b;
  document.getElementById('total').textContent=t;
  document.getElementById('pa').textContent=t?pa.toFixed(1)+'%':'-';
  document.getElementById('pb').textContent=t?(100-pa).toFixed(1)+'%':'-';
  document.getElementById('ba').style.width=pa+'%';
  document.getElementById('bb').style.width=(100-pa)+'%';
  document.getElementById('status').textContent='updated '+new Date().toLocaleTimeString();
}
var es=new EventSource('api/stream');
es.onmessage=function(e){show(JSON.parse(e.data))};
es.onerror=function(){document.getElementById('status').textContent='reconnecting…'};
</script>
</body></html>
`))
