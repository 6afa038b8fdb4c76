package main

import (
	"bufio"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// readOptions are those of `swarmlab-logd logs`.
type readOptions struct {
	dir        string
	target     string    // a service (with or without its stack's prefix) or a node
	since      time.Time // zero: from the start
	tail       int       // the last lines only; < 0: all
	follow     bool
	timestamps bool
	poll       time.Duration // how often a followed file is looked at
	stdout     io.Writer
	stderr     io.Writer
}

// Kinds of target.
const (
	kindService = "service"
	kindNode    = "node"
)

// resolve says what target names in dir: a service whose logs are under
// tasks/ (by its full name, else by its name without the stack's prefix:
// "db" for "vote_db"), or a node. An unknown or ambiguous name is an error
// that lists what there is.
func resolve(dir, target string) (kind, name string, err error) {
	if target == "" || target != safeName(target) {
		return "", "", fmt.Errorf("%q is not a service or node name", target)
	}
	if isDir(filepath.Join(dir, tasksDir, target)) {
		return kindService, target, nil
	}
	if isDir(filepath.Join(dir, nodesDir, target)) {
		return kindNode, target, nil
	}
	services, nodes := listDirs(filepath.Join(dir, tasksDir)), listDirs(filepath.Join(dir, nodesDir))
	var matches []string
	for _, s := range services {
		if strings.HasSuffix(s, "_"+target) {
			matches = append(matches, s)
		}
	}
	switch len(matches) {
	case 1:
		return kindService, matches[0], nil
	case 0:
		return "", "", fmt.Errorf("no service or node %q in the logs (services: %s; nodes: %s)", target, orNone(services), orNone(nodes))
	default:
		return "", "", fmt.Errorf("%q names several services: %s; give the full name", target, strings.Join(matches, ", "))
	}
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// listDirs names the directories in dir, sorted.
func listDirs(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// source is one log: a task's, or a node's dockerd log. Its lines are in
// old (the ".1" file, if any) then cur.
type source struct {
	label string // how its lines are prefixed; "" for a node's log
	cur   string
	old   string
}

// sources lists the logs of a target, sorted by label.
func sources(dir, kind, name string) []*source {
	if kind == kindNode {
		p := filepath.Join(dir, nodesDir, name, dockerdLog)
		return []*source{{cur: p, old: p + oldSuffix}}
	}
	sdir := filepath.Join(dir, tasksDir, name)
	entries, _ := os.ReadDir(sdir)
	byCur := map[string]*source{}
	for _, e := range entries {
		n := e.Name()
		base := strings.TrimSuffix(n, oldSuffix)
		if e.IsDir() || !strings.HasSuffix(base, logSuffix) {
			continue
		}
		if byCur[base] == nil {
			p := filepath.Join(sdir, base)
			byCur[base] = &source{label: taskLabel(base), cur: p, old: p + oldSuffix}
		}
	}
	var out []*source
	for _, s := range byCur {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *source) int { return strings.Compare(a.label, b.label) })
	return out
}

// entry is one line of a log.
type entry struct {
	ts     time.Time
	stream string
	msg    string
	src    *source
}

// lineIter reads a source's lines in order. A line with no time takes the
// time of the line before it. A last line with no line end is read only
// when final (not while following: its writer may be in the middle of it).
type lineIter struct {
	src   *source
	files []string
	final bool

	f      *os.File
	r      *bufio.Reader
	prevTS time.Time
	// Of the source's current file once read: what was read of it (whole
	// lines), and which file it was (to notice a rotation).
	curOff  int64
	curInfo os.FileInfo
}

func newLineIter(s *source, final bool) *lineIter {
	return &lineIter{src: s, files: []string{s.old, s.cur}, final: final}
}

func (it *lineIter) next() (entry, bool) {
	for {
		if it.f == nil {
			if len(it.files) == 0 {
				return entry{}, false
			}
			p := it.files[0]
			it.files = it.files[1:]
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			it.f, it.r = f, bufio.NewReaderSize(f, 64<<10)
			if p == it.src.cur {
				it.curInfo, _ = f.Stat()
				it.curOff = 0
			}
		}
		line, err := it.r.ReadString('\n')
		complete := strings.HasSuffix(line, "\n")
		if complete || (line != "" && it.final) {
			if len(it.files) == 0 { // the current file
				it.curOff += int64(len(line))
			}
			return it.entry(strings.TrimSuffix(line, "\n")), true
		}
		if err != nil {
			it.f.Close()
			it.f = nil
		}
	}
}

func (it *lineIter) entry(line string) entry {
	ts, stream, msg, ok := parseLine(line)
	if !ok {
		ts = it.prevTS
	}
	it.prevTS = ts
	return entry{ts: ts, stream: stream, msg: msg, src: it.src}
}

// merged is a heap of line iterators by the time of their next line.
type merged struct {
	its   []*lineIter
	heads []entry
}

func (m *merged) Len() int { return len(m.its) }
func (m *merged) Less(i, j int) bool {
	if !m.heads[i].ts.Equal(m.heads[j].ts) {
		return m.heads[i].ts.Before(m.heads[j].ts)
	}
	return m.heads[i].src.label < m.heads[j].src.label
}
func (m *merged) Swap(i, j int) {
	m.its[i], m.its[j] = m.its[j], m.its[i]
	m.heads[i], m.heads[j] = m.heads[j], m.heads[i]
}
func (m *merged) Push(x any) {}
func (m *merged) Pop() any {
	n := len(m.its) - 1
	m.its, m.heads = m.its[:n], m.heads[:n]
	return nil
}

// mergeLines calls emit with every line of its, in time order across them
// (each one's lines are in time order already).
func mergeLines(its []*lineIter, emit func(entry)) {
	m := &merged{}
	for _, it := range its {
		if e, ok := it.next(); ok {
			m.its = append(m.its, it)
			m.heads = append(m.heads, e)
		}
	}
	heap.Init(m)
	for m.Len() > 0 {
		emit(m.heads[0])
		if e, ok := m.its[0].next(); ok {
			m.heads[0] = e
			heap.Fix(m, 0)
		} else {
			heap.Pop(m)
		}
	}
}

// printer writes entries: a task's lines prefixed with the task (padded to
// the widest), with the time if asked. A task's stderr lines go to stderr,
// as docker service logs does; a node's log goes to stdout whole.
type printer struct {
	o     readOptions
	width int
	out   *bufio.Writer
	errw  *bufio.Writer
}

func newPrinter(o readOptions, srcs []*source) *printer {
	p := &printer{o: o, out: bufio.NewWriter(o.stdout), errw: bufio.NewWriter(o.stderr)}
	p.widen(srcs)
	return p
}

func (p *printer) widen(srcs []*source) {
	for _, s := range srcs {
		p.width = max(p.width, len(s.label))
	}
}

func (p *printer) print(e entry) {
	w := p.out
	if e.stream == "stderr" && e.src.label != "" {
		w = p.errw
	}
	if p.o.timestamps && !e.ts.IsZero() {
		w.WriteString(e.ts.UTC().Format(time.RFC3339Nano))
		w.WriteByte(' ')
	}
	if e.src.label != "" {
		w.WriteString(e.src.label)
		w.WriteString(strings.Repeat(" ", p.width-len(e.src.label)))
		w.WriteString(" | ")
	}
	w.WriteString(e.msg)
	w.WriteByte('\n')
}

func (p *printer) flush() error {
	return errors.Join(p.out.Flush(), p.errw.Flush())
}

// readLogs prints the target's lines from o.since on (the last o.tail of
// them), merged in time order; with o.follow it then prints new lines as
// they are written, until ctx ends.
func readLogs(ctx context.Context, o readOptions) error {
	kind, name, err := resolve(o.dir, o.target)
	if err != nil {
		return err
	}
	srcs := sources(o.dir, kind, name)
	p := newPrinter(o, srcs)
	var its []*lineIter
	for _, s := range srcs {
		its = append(its, newLineIter(s, !o.follow))
	}
	var ring []entry
	mergeLines(its, func(e entry) {
		if !o.since.IsZero() && e.ts.Before(o.since) {
			return
		}
		switch {
		case o.tail < 0:
			p.print(e)
		case o.tail > 0:
			if len(ring) == o.tail {
				ring = append(ring[:0], ring[1:]...)
			}
			ring = append(ring, e)
		}
	})
	for _, e := range ring {
		p.print(e)
	}
	if err := p.flush(); err != nil || !o.follow {
		return err
	}

	// Follow: look at every file again every o.poll, and at new ones.
	type followed struct {
		src  *source
		off  int64
		info os.FileInfo
		prev time.Time
	}
	state := map[string]*followed{}
	for _, it := range its {
		state[it.src.cur] = &followed{src: it.src, off: it.curOff, info: it.curInfo, prev: it.prevTS}
	}
	poll := o.poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		var batch []entry
		now := sources(o.dir, kind, name)
		p.widen(now)
		for _, s := range now {
			fs := state[s.cur]
			if fs == nil { // a new task: all of it
				it := newLineIter(s, false)
				for e, ok := it.next(); ok; e, ok = it.next() {
					batch = append(batch, e)
				}
				state[s.cur] = &followed{src: s, off: it.curOff, info: it.curInfo, prev: it.prevTS}
				continue
			}
			st, err := os.Stat(s.cur)
			if err != nil {
				continue
			}
			if fs.info != nil && !os.SameFile(fs.info, st) {
				// Rotated: the rest of the file read so far is now the old one.
				if ost, err := os.Stat(s.old); err == nil && os.SameFile(ost, fs.info) {
					var es []entry
					es, _, fs.prev = readFrom(fs.src, s.old, fs.off, true, fs.prev)
					batch = append(batch, es...)
				}
				fs.off = 0
			}
			fs.info = st
			var es []entry
			es, fs.off, fs.prev = readFrom(fs.src, s.cur, fs.off, false, fs.prev)
			batch = append(batch, es...)
		}
		slices.SortStableFunc(batch, func(a, b entry) int { return a.ts.Compare(b.ts) })
		for _, e := range batch {
			p.print(e)
		}
		if err := p.flush(); err != nil {
			return err
		}
	}
}

// readFrom reads the lines of path after off (a last line with no line
// end only if final), and returns them, the offset after them and the
// time of the last.
func readFrom(s *source, path string, off int64, final bool, prev time.Time) ([]entry, int64, time.Time) {
	f, err := os.Open(path)
	if err != nil {
		return nil, off, prev
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, off, prev
	}
	it := &lineIter{src: s, final: final, f: f, r: bufio.NewReader(f), prevTS: prev}
	var out []entry
	for {
		line, err := it.r.ReadString('\n')
		if strings.HasSuffix(line, "\n") || (line != "" && final) {
			off += int64(len(line))
			out = append(out, it.entry(strings.TrimSuffix(line, "\n")))
			continue
		}
		if err != nil {
			return out, off, it.prevTS
		}
	}
}

// parseSince reads --since: a duration back from now ("10m"), a time
// (RFC 3339, with or without nanoseconds or a zone, which is then UTC; or
// a date), or Unix seconds.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (10m), a time (2006-01-02T15:04:05Z) or Unix seconds", s)
}
