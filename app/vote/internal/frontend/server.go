// Package frontend is the vote web service: it accepts a vote and answers
// 2xx only once the vote is durably in the frontend's Redis.
package frontend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
)

// MaxBody is the largest request body accepted; a vote needs well under 100 bytes.
const MaxBody = 4 << 10

// CookieName holds the browser's voter id.
const CookieName = "voter_id"

// Recorder makes a vote durable; Batcher is the real one.
type Recorder interface {
	Record(ctx context.Context, voter string, choice byte) error
}

// Config describes one vote server.
type Config struct {
	OptionA, OptionB string
	Node             string                          // shown on the page and in X-Served-By
	Ping             func(ctx context.Context) error // health of the Redis behind it
}

// Server serves the vote page and API.
type Server struct {
	rec      Recorder
	cfg      Config
	servedBy []string
}

func NewServer(rec Recorder, cfg Config) *Server {
	return &Server{rec: rec, cfg: cfg, servedBy: []string{cfg.Node}}
}

func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("POST /{$}", s.form)
	mux.HandleFunc("POST /api/vote", s.api)
	mux.HandleFunc("GET /healthz", s.health)
	return mux
}

// Shared across requests to keep the hot path free of per-request buffers.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

type apiRequest struct {
	Vote    string `json:"vote"`
	VoterID string `json:"voter_id"`
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	w.Header()["X-Served-By"] = s.servedBy
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	body, err := readBody(r, (*bp)[:0])
	*bp = body[:0]
	if err != nil {
		bodyError(w, err)
		return
	}
	var req apiRequest
	if err := json.Unmarshal(body, &req); err != nil {
		jsonError(w, http.StatusBadRequest, "body must be JSON like {\"vote\":\"a\"}")
		return
	}
	if !ballot.ValidChoice(req.Vote) {
		jsonError(w, http.StatusBadRequest, `vote must be "a" or "b"`)
		return
	}
	voter := req.VoterID
	if voter == "" {
		voter = s.voterCookie(w, r)
	} else if !ballot.ValidVoterID(voter) {
		jsonError(w, http.StatusBadRequest, "voter_id must be 1-64 characters of A-Z a-z 0-9 . _ : -")
		return
	}
	if err := s.rec.Record(r.Context(), voter, req.Vote[0]); err != nil {
		jsonError(w, http.StatusServiceUnavailable, "vote not recorded, please retry")
		return
	}
	out := append(*bp, `{"ok":true,"voter_id":"`...)
	out = append(out, voter...) // ValidVoterID admits nothing that needs escaping
	out = append(out, `","vote":"`...)
	out = append(out, req.Vote...)
	out = append(out, "\"}\n"...)
	*bp = out[:0]
	h := w.Header()
	h["Content-Type"] = jsonType
	w.WriteHeader(http.StatusAccepted) // durable, counted soon
	w.Write(out)
}

var jsonType = []string{"application/json"}

var errTooLarge = errors.New("body too large")

// readBody reads at most MaxBody bytes into buf.
func readBody(r *http.Request, buf []byte) ([]byte, error) {
	if r.ContentLength > MaxBody {
		return buf, errTooLarge
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > MaxBody {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func bodyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.Is(err, errTooLarge) || errors.As(err, &mbe) {
		jsonError(w, http.StatusRequestEntityTooLarge, "body larger than 4 KiB")
		return
	}
	jsonError(w, http.StatusBadRequest, "could not read body")
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// voterCookie returns the browser's voter id, issuing a new one if it has
// none or a malformed one.
func (s *Server) voterCookie(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(CookieName); err == nil && ballot.ValidVoterID(c.Value) {
		return c.Value
	}
	id := NewVoterID()
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: "/",
		MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return id
}

// NewVoterID returns 128 random bits in hex.
func NewVoterID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

type pageData struct {
	A, B, Node string
	Voted      string // option name just voted for, if any
	Error      string
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	s.voterCookie(w, r)
	s.render(w, http.StatusOK, pageData{})
}

func (s *Server) form(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	if err := r.ParseForm(); err != nil {
		bodyError(w, err)
		return
	}
	choice := r.PostForm.Get("vote")
	if !ballot.ValidChoice(choice) {
		jsonError(w, http.StatusBadRequest, `vote must be "a" or "b"`)
		return
	}
	voter := s.voterCookie(w, r)
	if err := s.rec.Record(r.Context(), voter, choice[0]); err != nil {
		s.render(w, http.StatusServiceUnavailable, pageData{Error: "Your vote was not recorded. Please try again."})
		return
	}
	name := s.cfg.OptionA
	if choice == "b" {
		name = s.cfg.OptionB
	}
	s.render(w, http.StatusOK, pageData{Voted: name})
}

func (s *Server) render(w http.ResponseWriter, code int, d pageData) {
	d.A, d.B, d.Node = s.cfg.OptionA, s.cfg.OptionB, s.cfg.Node
	w.Header()["X-Served-By"] = s.servedBy
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	pageTmpl.Execute(w, d)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if s.cfg.Ping != nil {
		if err := s.cfg.Ping(ctx); err != nil {
			http.Error(w, "redis: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	io.WriteString(w, "ok\n")
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.A}} vs {{.B}}</title>
<style>
body{font-family:sans-serif;max-width:32rem;margin:3rem auto;text-align:center;color:#222}
form{display:flex;gap:1rem;justify-content:center}
button{font-size:1.5rem;padding:1rem 2rem;border:0;border-radius:.5rem;color:#fff;cursor:pointer}
.a{background:#0a7bbf}.b{background:#e0701b}
.note{margin-top:1.5rem}.err{color:#b00}
footer{margin-top:3rem;color:#777;font-size:.9rem}
</style></head><body>
<h1>{{.A}} vs {{.B}}!</h1>
<form method="post" action="/">
<button class="a" name="vote" value="a">{{.A}}</button>
<button class="b" name="vote" value="b">{{.B}}</button>
</form>
{{if .Voted}}<p class="note">Your vote for <b>{{.Voted}}</b> is recorded. You may change it any time; your latest vote counts.</p>{{end}}
{{if .Error}}<p class="note err">{{.Error}}</p>{{end}}
<footer>Processed by frontend <b>{{.Node}}</b></footer>
</body></html>
`))
