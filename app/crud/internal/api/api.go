// Package api is what the crud app's gate and storage services share: the
// item, the rules an id, a prefix and a write body must follow, and the JSON
// answers. The gate checks input at the edge; storage checks it again, so
// neither trusts the other to have done it.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
)

// Item is one stored item. Version counts the writes it has had: 1 after the
// first PUT, and one more after each.
type Item struct {
	ID      string `json:"id"`
	Value   string `json:"value"`
	Version int64  `json:"version"`
}

// MaxIDBytes is the longest id (and prefix): the items table's key is a
// VARCHAR(255).
const MaxIDBytes = 255

// MaxBody is the largest request body the gate accepts (a larger one is a 413).
const MaxBody = 64 << 10

// FieldError is bad input in one named field; it reads "field: problem".
type FieldError struct{ Field, Problem string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// CheckID checks an item id: 1 to 255 bytes of UTF-8, no control characters.
func CheckID(id string) error { return checkKey("id", id, false) }

// CheckPrefix checks a list prefix: like an id, but it may be empty.
func CheckPrefix(p string) error { return checkKey("prefix", p, true) }

func checkKey(field, s string, emptyOK bool) error {
	switch {
	case s == "" && !emptyOK:
		return &FieldError{field, "is required"}
	case len(s) > MaxIDBytes:
		return &FieldError{field, fmt.Sprintf("is %d bytes, the limit is %d", len(s), MaxIDBytes)}
	case !utf8.ValidString(s):
		return &FieldError{field, "must be valid UTF-8"}
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return &FieldError{field, "must not contain control characters"}
		}
	}
	return nil
}

// ErrTooLarge is a body over the reader's limit.
var ErrTooLarge = errors.New("body too large")

// ReadValue reads a write body, {"value": "<string>"}, of at most max bytes.
// Other fields are ignored. The error is ErrTooLarge or a *FieldError.
func ReadValue(w http.ResponseWriter, r *http.Request, max int64) (string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return "", ErrTooLarge
	case err != nil:
		return "", &FieldError{"body", "unreadable: " + err.Error()}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return "", &FieldError{"body", `must be a JSON object, {"value": "..."}`}
	}
	raw, ok := fields["value"]
	if !ok {
		return "", &FieldError{"value", "is required"}
	}
	var v string
	if string(raw) == "null" || json.Unmarshal(raw, &v) != nil {
		return "", &FieldError{"value", "must be a string"}
	}
	return v, nil
}

// JSON writes v as the answer with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// Error is an error answer, {"error": "..."}.
type Error struct {
	Error string `json:"error"`
}

// Fail writes {"error": msg} with the given status.
func Fail(w http.ResponseWriter, status int, msg string) {
	JSON(w, status, Error{msg})
}

// BadInput answers a ReadValue, CheckID or CheckPrefix error: 413 for a
// body over the limit, else 400 naming the field.
func BadInput(w http.ResponseWriter, err error, max int64) {
	if errors.Is(err, ErrTooLarge) {
		Fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", max))
		return
	}
	Fail(w, http.StatusBadRequest, err.Error())
}

// ItemHandlers are a service's handlers of the item routes.
type ItemHandlers struct {
	Put, Get, Delete, List http.HandlerFunc
}

// HandleItems registers the item routes, the same on the gate and on
// storage, and a 404 naming the route for any other.
func HandleItems(mux *http.ServeMux, h ItemHandlers) {
	mux.HandleFunc("PUT /items/{id}", h.Put)
	mux.HandleFunc("GET /items/{id}", h.Get)
	mux.HandleFunc("DELETE /items/{id}", h.Delete)
	mux.HandleFunc("GET /items", h.List)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		Fail(w, http.StatusNotFound, "path: no such route: "+r.Method+" "+r.URL.Path)
	})
}

// PathID takes the path's {id}, notes it in the request's log line, and
// answers 400 if it is not an id.
func PathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	reqlog.From(r.Context()).Item = id
	if err := CheckID(id); err != nil {
		BadInput(w, err, 0)
		return "", false
	}
	return id, true
}

// QueryPrefix takes ?prefix=, notes it in the request's log line, and
// answers 400 if it is not a prefix.
func QueryPrefix(w http.ResponseWriter, r *http.Request) (string, bool) {
	p := r.URL.Query().Get("prefix")
	reqlog.From(r.Context()).Item = p
	if err := CheckPrefix(p); err != nil {
		BadInput(w, err, 0)
		return "", false
	}
	return p, true
}
