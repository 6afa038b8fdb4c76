package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// voteConn is a minimal HTTP/1.1 keep-alive client for POST /api/vote (or,
// for Ceiling, GET of one URL).
// net/http's client costs about as much CPU per request as the vote server
// itself (a reader and a writer goroutine per connection, a hand-off for
// every request); on a 2-core machine that halves the rate we can measure.
// This one writes a request and reads the reply on the caller's goroutine.
type voteConn struct {
	addr string // host:port
	host string // Host header
	path string
	get  bool // GET path without a body, instead of POSTing votes
	c    net.Conn
	br   *bufio.Reader
	req  []byte
}

func newVoteConn(base string) (*voteConn, error) {
	return newConn(base, false, func(u *url.URL) string { return strings.TrimSuffix(u.Path, "/") + "/api/vote" })
}

// newGetConn GETs exactly rawURL (path and query) on every request.
func newGetConn(rawURL string) (*voteConn, error) {
	return newConn(rawURL, true, (*url.URL).RequestURI)
}

// newConn makes a connection to rawURL's host that requests path(rawURL).
func newConn(rawURL string, get bool, path func(*url.URL) string) (*voteConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%s: loadgen speaks plain http only", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &voteConn{addr: addr, host: u.Host, path: path(u), get: get}, nil
}

var errBadResponse = errors.New("malformed HTTP response")

// send makes one request (a vote POST with body, or the GET) and returns
// the status code. On any error the connection is dropped and the next call
// dials a new one.
func (v *voteConn) send(body []byte, timeout time.Duration) (int, error) {
	code, err := v.roundTrip(body, timeout)
	if err != nil {
		v.close()
	}
	return code, err
}

func (v *voteConn) roundTrip(body []byte, timeout time.Duration) (int, error) {
	if v.c == nil {
		c, err := net.DialTimeout("tcp", v.addr, timeout)
		if err != nil {
			return 0, err
		}
		v.c, v.br = c, bufio.NewReaderSize(c, 4096)
	}
	v.c.SetDeadline(time.Now().Add(timeout))
	method := "POST "
	if v.get {
		method = "GET "
	}
	r := append(v.req[:0], method...)
	r = append(r, v.path...)
	r = append(r, " HTTP/1.1\r\nHost: "...)
	r = append(r, v.host...)
	if !v.get {
		r = append(r, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		r = strconv.AppendInt(r, int64(len(body)), 10)
	}
	r = append(r, "\r\n\r\n"...)
	r = append(r, body...)
	v.req = r
	if _, err := v.c.Write(r); err != nil {
		return 0, err
	}

	line, err := v.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 202 Accepted\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, errBadResponse
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, errBadResponse
	}
	// HTTP/1.0 closes after each reply unless it says otherwise.
	length, keep := -1, !bytes.HasPrefix(line, []byte("HTTP/1.0"))
	for {
		h, err := v.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break // blank line: end of headers
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, errBadResponse
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, errBadResponse
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("keep-alive")):
			keep = true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, errors.New("chunked response not supported")
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	if _, err := v.br.Discard(length); err != nil {
		return 0, err
	}
	if !keep {
		v.close()
	}
	return code, nil
}

func (v *voteConn) close() {
	if v.c != nil {
		v.c.Close()
		v.c, v.br = nil, nil
	}
}
