package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"time"
)

// engine is just enough of a Docker engine client, over its unix socket:
// the collector is built from the standard library alone (see main.go).
type engine struct {
	hc   *http.Client
	base string
}

func unixEngine(socket string) *engine {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &engine{hc: &http.Client{Transport: tr}, base: "http://docker"}
}

// get asks the engine for path; a status other than 200 is an error
// carrying the engine's message.
func (e *engine) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := e.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}

func (e *engine) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := e.get(ctx, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// collector follows a node engine's events and the output of every
// container it starts, into files under dir (format.go).
type collector struct {
	eng   *engine
	dir   string
	node  string
	logf  func(format string, args ...any)
	retry time.Duration // between attempts to reach the engine
	// startWait is how long the engine may not answer at first before the
	// collector says so.
	startWait time.Duration

	mu        sync.Mutex
	following map[string]bool // log paths being written
	wg        sync.WaitGroup
}

func newCollector(eng *engine, dir, node string, logf func(string, ...any)) *collector {
	return &collector{eng: eng, dir: dir, node: node, logf: logf, retry: 500 * time.Millisecond, startWait: 30 * time.Second, following: map[string]bool{}}
}

// event is what the collector reads of an engine event.
type event struct {
	Type     string `json:"Type"`
	Action   string `json:"Action"`
	TimeNano int64  `json:"timeNano"`
	Actor    struct {
		ID string `json:"ID"`
	} `json:"Actor"`
}

// Run collects until ctx ends, then waits for the files it writes to be
// closed. The engine not answering (yet, or any more) is retried.
func (c *collector) Run(ctx context.Context) {
	defer c.wg.Wait()
	events, err := openLog(filepath.Join(c.dir, nodesDir, safeName(c.node), eventsLog))
	if err != nil {
		c.logf("events of node %s are not kept: %v", c.node, err)
	} else {
		defer events.Close()
	}
	var since int64 // timeNano of the last event written
	// The engine starts with the collector: it not answering is said only
	// once it answered before, or after startWait.
	reported, start := false, time.Now()
	for ctx.Err() == nil {
		connected, err := c.stream(ctx, events, &since)
		if ctx.Err() != nil {
			return
		}
		if connected || (!reported && time.Since(start) > c.startWait) {
			c.logf("following the engine's events: %v (trying again every %s)", err, c.retry)
			reported = !connected
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.retry):
		}
	}
}

// stream reads the engine's events from *since on, writing each to events
// and following every container that starts, once it has followed those
// already running. It says whether the engine answered.
func (c *collector) stream(ctx context.Context, events *logFile, since *int64) (bool, error) {
	q := url.Values{}
	if *since > 0 {
		q.Set("since", fmt.Sprintf("%d.%09d", *since/1e9, *since%1e9))
	}
	resp, err := c.eng.get(ctx, "/events", q)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	// Subscribed: a container started from now on is in the stream; those
	// already running are listed.
	var running []struct{ ID string }
	if err := c.eng.getJSON(ctx, "/containers/json", nil, &running); err != nil {
		c.logf("listing running containers: %v", err)
	}
	for _, r := range running {
		c.follow(ctx, r.ID)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return true, err
		}
		var ev event
		if json.Unmarshal(raw, &ev) != nil {
			continue
		}
		if ev.TimeNano != 0 && ev.TimeNano <= *since {
			continue // seen before the stream was opened again
		}
		*since = max(*since, ev.TimeNano)
		if events != nil {
			var line bytes.Buffer
			if json.Compact(&line, raw) == nil {
				line.WriteByte('\n')
				events.WriteRaw(line.Bytes())
			}
		}
		if ev.Type == "container" && ev.Action == "start" && ev.Actor.ID != "" {
			c.follow(ctx, ev.Actor.ID)
		}
	}
}

type containerInfo struct {
	Name   string `json:"Name"`
	Config struct {
		Tty    bool              `json:"Tty"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	State struct {
		Running bool `json:"Running"`
	} `json:"State"`
}

// follow starts copying the output of container id into its log file,
// unless that file is being written already.
func (c *collector) follow(ctx context.Context, id string) {
	var info containerInfo
	if err := c.eng.getJSON(ctx, "/containers/"+id+"/json", nil, &info); err != nil {
		c.logf("container %s: %v", shortID(id), err)
		return
	}
	rel := containerLogPath(c.node, id, info.Name, info.Config.Labels)
	c.mu.Lock()
	if c.following[rel] {
		c.mu.Unlock()
		return
	}
	c.following[rel] = true
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.following, rel)
			c.mu.Unlock()
		}()
		defer func() {
			if r := recover(); r != nil {
				c.logf("container %s: %v", shortID(id), r)
			}
		}()
		lf, err := openLog(filepath.Join(c.dir, rel))
		if err != nil {
			c.logf("container %s: %v", shortID(id), err)
			return
		}
		defer lf.Close()
		for ctx.Err() == nil {
			err := c.copyOutput(ctx, id, info.Config.Tty, lf)
			if ctx.Err() != nil {
				return
			}
			// The stream ends when the container stops; if it still runs,
			// the stream broke: take it up again after the last line.
			var now containerInfo
			if c.eng.getJSON(ctx, "/containers/"+id+"/json", nil, &now) != nil || !now.State.Running {
				return
			}
			c.logf("container %s: output stream ended (%v) while it runs; following again", shortID(id), err)
			select {
			case <-ctx.Done():
			case <-time.After(c.retry):
			}
		}
	}()
}

// copyOutput streams the container's output since the last line of lf into
// lf, until the stream ends.
func (c *collector) copyOutput(ctx context.Context, id string, tty bool, lf *logFile) error {
	last := lf.Last()
	q := url.Values{"follow": {"1"}, "stdout": {"1"}, "stderr": {"1"}, "timestamps": {"1"}}
	if !last.IsZero() {
		q.Set("since", fmt.Sprintf("%d.%09d", last.Unix(), last.Nanosecond()))
	}
	resp, err := c.eng.get(ctx, "/containers/"+id+"/logs", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return copyLogStream(resp.Body, tty, last, lf)
}

// copyLogStream writes the lines of a log stream of the engine (with
// timestamps; multiplexed unless the container has a TTY) to lf, skipping
// those not after last (already in lf).
func copyLogStream(r io.Reader, tty bool, last time.Time, lf *logFile) error {
	var splitters [3]lineSplitter
	names := [3]string{"stdout", "stdout", "stderr"}
	line := func(stream int) func([]byte) {
		return func(b []byte) {
			ts, msg := splitTimestamp(b)
			if !ts.IsZero() && !last.IsZero() && !ts.After(last) {
				return
			}
			lf.Write(ts, names[stream], msg)
		}
	}
	defer func() {
		for i := range splitters {
			splitters[i].Flush(line(i))
		}
	}()
	br := bufio.NewReaderSize(r, 32<<10)
	if tty {
		buf := make([]byte, 32<<10)
		for {
			n, err := br.Read(buf)
			splitters[1].Feed(buf[:n], line(1))
			if err != nil {
				return eofIsNil(err)
			}
		}
	}
	var hdr [8]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return eofIsNil(err)
		}
		size := binary.BigEndian.Uint32(hdr[4:])
		if cap(payload) < int(size) {
			payload = make([]byte, size)
		}
		payload = payload[:size]
		if _, err := io.ReadFull(br, payload); err != nil {
			return eofIsNil(err)
		}
		stream := int(hdr[0])
		if stream != 1 && stream != 2 {
			continue // stdin (0), or the engine's own stream (3)
		}
		splitters[stream].Feed(payload, line(stream))
	}
}

func eofIsNil(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}
