package frontend

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeRecorder records votes in memory, or fails if err is set.
type fakeRecorder struct {
	mu    sync.Mutex
	votes []string // "voter=choice"
	err   error
}

func (f *fakeRecorder) Record(_ context.Context, voter string, choice byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.votes = append(f.votes, voter+"="+string(choice))
	return nil
}

func newTestServer(rec Recorder) http.Handler {
	return NewServer(rec, Config{OptionA: "Cats", OptionB: "Dogs", Node: "frontend01"}).Handler()
}

func do(h http.Handler, method, target, ctype, body string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestAPIValidation(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"ok a", `{"vote":"a","voter_id":"v1"}`, 202},
		{"ok b", `{"vote":"b","voter_id":"lg-1234:5.x_y"}`, 202},
		{"ok no voter", `{"vote":"a"}`, 202},
		{"unknown fields ignored", `{"vote":"a","voter_id":"v1","x":1}`, 202},
		{"empty body", ``, 400},
		{"not json", `vote=a`, 400},
		{"truncated json", `{"vote":"a"`, 400},
		{"missing vote", `{"voter_id":"v1"}`, 400},
		{"bad vote", `{"vote":"c","voter_id":"v1"}`, 400},
		{"upper case vote", `{"vote":"A","voter_id":"v1"}`, 400},
		{"vote wrong type", `{"vote":1}`, 400},
		{"voter id with space", `{"vote":"a","voter_id":"v 1"}`, 400},
		{"voter id with quote", `{"vote":"a","voter_id":"v\"1"}`, 400},
		{"voter id too long", `{"vote":"a","voter_id":"` + strings.Repeat("x", 65) + `"}`, 400},
		{"oversized", `{"vote":"a","voter_id":"v1","pad":"` + strings.Repeat("x", MaxBody) + `"}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &fakeRecorder{}
			w := do(newTestServer(rec), "POST", "/api/vote", "application/json", tc.body)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if got := len(rec.votes); (tc.code == 202) != (got == 1) {
				t.Errorf("%d votes recorded for status %d", got, tc.code)
			}
			if tc.code != 202 && !strings.Contains(w.Body.String(), `"error"`) {
				t.Errorf("error body %q lacks an error field", w.Body)
			}
		})
	}
}

// A body larger than the limit is refused without being read whole, whether
// or not the client declares its length.
func TestAPIOversizedStreamed(t *testing.T) {
	rec := &fakeRecorder{}
	req := httptest.NewRequest("POST", "/api/vote", strings.NewReader(strings.Repeat(" ", 1<<20)+`{"vote":"a"}`))
	req.ContentLength = -1 // as with chunked encoding
	w := httptest.NewRecorder()
	newTestServer(rec).ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge || len(rec.votes) != 0 {
		t.Fatalf("status %d, %d votes", w.Code, len(rec.votes))
	}
	// Exactly at the limit is fine.
	body := `{"vote":"a","voter_id":"v1"}`
	body += strings.Repeat(" ", MaxBody-len(body))
	if w := do(newTestServer(rec), "POST", "/api/vote", "", body); w.Code != 202 {
		t.Fatalf("body of exactly %d bytes: status %d", len(body), w.Code)
	}
}

func TestCookie(t *testing.T) {
	rec := &fakeRecorder{}
	h := newTestServer(rec)

	// No cookie: one is issued and used as the voter id.
	w := do(h, "POST", "/api/vote", "", `{"vote":"a"}`)
	c := cookieOf(t, w)
	if len(c.Value) != 32 || strings.Trim(c.Value, "0123456789abcdef") != "" {
		t.Fatalf("voter id %q is not 128 bits of hex", c.Value)
	}
	if !c.HttpOnly || c.Path != "/" || c.MaxAge <= 0 {
		t.Errorf("cookie attributes: %+v", c)
	}
	// The cookie is reused and not reissued.
	w = do(h, "POST", "/api/vote", "", `{"vote":"b"}`, c)
	if w.Header().Get("Set-Cookie") != "" {
		t.Errorf("cookie reissued")
	}
	// A malformed cookie is replaced.
	w = do(h, "POST", "/api/vote", "", `{"vote":"b"}`, &http.Cookie{Name: CookieName, Value: "<script>"})
	bad := cookieOf(t, w)
	// An explicit voter_id wins and needs no cookie.
	w = do(h, "POST", "/api/vote", "", `{"vote":"a","voter_id":"load-7"}`)
	if w.Header().Get("Set-Cookie") != "" {
		t.Errorf("cookie set although voter_id was given")
	}
	want := []string{c.Value + "=a", c.Value + "=b", bad.Value + "=b", "load-7=a"}
	if strings.Join(rec.votes, " ") != strings.Join(want, " ") {
		t.Errorf("votes %v, want %v", rec.votes, want)
	}
	// Different browsers get different ids.
	if other := cookieOf(t, do(h, "GET", "/", "", "")); other.Value == c.Value {
		t.Errorf("two browsers share voter id %s", c.Value)
	}
}

func cookieOf(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in response (status %d)", CookieName, w.Code)
	return nil
}

func TestPageAndForm(t *testing.T) {
	rec := &fakeRecorder{}
	h := NewServer(rec, Config{OptionA: "Tea", OptionB: "Coffee", Node: "frontend02"}).Handler()
	w := do(h, "GET", "/", "", "")
	if w.Code != 200 {
		t.Fatalf("GET /: %d", w.Code)
	}
	for _, s := range []string{"Tea", "Coffee", "frontend02", `name="vote" value="a"`} {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if w.Header().Get("X-Served-By") != "frontend02" {
		t.Errorf("X-Served-By %q", w.Header().Get("X-Served-By"))
	}
	c := cookieOf(t, w)

	form := url.Values{"vote": {"b"}}.Encode()
	w = do(h, "POST", "/", "application/x-www-form-urlencoded", form, c)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "<b>Coffee</b> is recorded") {
		t.Fatalf("form vote: %d %s", w.Code, w.Body)
	}
	if len(rec.votes) != 1 || rec.votes[0] != c.Value+"=b" {
		t.Fatalf("votes %v", rec.votes)
	}
	if w := do(h, "POST", "/", "application/x-www-form-urlencoded", "vote=x", c); w.Code != 400 {
		t.Errorf("bad form vote: %d", w.Code)
	}
	big := "vote=a&pad=" + strings.Repeat("x", MaxBody)
	if w := do(h, "POST", "/", "application/x-www-form-urlencoded", big, c); w.Code != 413 {
		t.Errorf("oversized form: %d", w.Code)
	}
	if w := do(h, "GET", "/nope", "", ""); w.Code != 404 {
		t.Errorf("GET /nope: %d", w.Code)
	}
	if w := do(h, "PUT", "/api/vote", "", `{"vote":"a"}`); w.Code != 405 {
		t.Errorf("PUT /api/vote: %d", w.Code)
	}
}

// If the vote could not be made durable, the client must not see success.
func TestRecordFailureIsNot2xx(t *testing.T) {
	rec := &fakeRecorder{err: errors.New("redis down")}
	h := newTestServer(rec)
	if w := do(h, "POST", "/api/vote", "", `{"vote":"a","voter_id":"v"}`); w.Code != 503 {
		t.Errorf("api: %d", w.Code)
	}
	if w := do(h, "POST", "/", "application/x-www-form-urlencoded", "vote=a"); w.Code != 503 {
		t.Errorf("form: %d", w.Code)
	}
}

func TestHealth(t *testing.T) {
	var err error
	h := NewServer(&fakeRecorder{}, Config{Ping: func(context.Context) error { return err }}).Handler()
	if w := do(h, "GET", "/healthz", "", ""); w.Code != 200 {
		t.Errorf("healthy: %d", w.Code)
	}
	err = errors.New("connection refused")
	if w := do(h, "GET", "/healthz", "", ""); w.Code != 503 {
		t.Errorf("unhealthy: %d", w.Code)
	}
}

func BenchmarkAPIHandler(b *testing.B) {
	h := newTestServer(nopRecorder{})
	body := `{"vote":"a","voter_id":"0123456789abcdef0123456789abcdef"}`
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/api/vote", strings.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 202 {
				b.Fatal(w.Code)
			}
		}
	})
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, string, byte) error { return nil }
