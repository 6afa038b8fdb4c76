package registry

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// Request is one HTTP request the registry served, as its access log
// records it.
type Request struct {
	Remote    string // the client's IP, without its port
	Method    string // GET, HEAD, PUT...
	Path      string // "/v2/library/nginx/manifests/latest"
	Status    int
	UserAgent string
}

// ManifestGet reports whether r fetched a manifest of repo ("library/nginx")
// by tag or digest.
func (r Request) ManifestGet(repo string) bool {
	return r.Method == "GET" && strings.HasPrefix(r.Path, "/v2/"+repo+"/manifests/")
}

func (r Request) String() string {
	return fmt.Sprintf("%s %s %s %d", r.Remote, r.Method, r.Path, r.Status)
}

// accessLine matches distribution's combined access log, one line per
// request: `10.99.0.10 - - [01/Dec/2026:21:21:33 +0000] "GET /v2/ HTTP/1.1"
// 200 2 "" "docker/20.10.24 ..."`. The registry also writes a structured
// "response completed" line per request; the access line is the one whose
// format does not depend on the log level or formatter.
var accessLine = regexp.MustCompile(`^(\S+) \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"`)

// ParseAccessLog returns the requests recorded in a registry's log, in
// order; lines that are not access lines are skipped.
func ParseAccessLog(r io.Reader) ([]Request, error) {
	var out []Request
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := accessLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		status, _ := strconv.Atoi(m[4])
		remote := m[1]
		if h, _, err := net.SplitHostPort(remote); err == nil {
			remote = h
		}
		out = append(out, Request{Remote: remote, Method: m[2], Path: m[3], Status: status, UserAgent: m[5]})
	}
	return out, sc.Err()
}

// Requests reads the access log of the registry running in container (a
// name or ID on the engine host talks to).
func Requests(ctx context.Context, host client.APIClient, container string) ([]Request, error) {
	rc, err := host.ContainerLogs(ctx, container, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil, fmt.Errorf("logs of registry %s: %w", container, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return nil, fmt.Errorf("logs of registry %s: %w", container, err)
	}
	return ParseAccessLog(&buf)
}
