package main

import (
	"bytes"
	"path"
	"strings"
	"time"
)

// The layout of the logs directory (the lab's logs volume, shared by every
// node of the lab, each writing only its own files):
//
//	nodes/<node>/dockerd.log                      the node engine's output
//	nodes/<node>/events.jsonl                     every event of the node engine, one JSON object a line
//	nodes/<node>/containers/<name>.<id12>.log     containers that are not swarm tasks
//	tasks/<service>/<task>.<task id>@<node>.log   a swarm task's output ("vote_db.1.<id>@store")
//
// A log file that grows past maxFileSize is renamed to the same name with
// ".1" added (replacing an older one) and started again.
//
// Each line of a log file is
//
//	<time> <stream> <message>
//
// the time in UTC, RFC 3339 with nanoseconds, fixed width (so that text order
// is time order), the stream "stdout" or "stderr".
const (
	nodesDir   = "nodes"
	tasksDir   = "tasks"
	dockerdLog = "dockerd.log"
	eventsLog  = "events.jsonl"
	logSuffix  = ".log"
	oldSuffix  = ".1"
)

// maxFileSize is the size past which a log file is rotated (a variable for
// the tests).
var maxFileSize int64 = 64 << 20

// timeFormat is RFC 3339 with nanoseconds, fixed width.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Labels the swarm agent puts on a task's container.
const (
	labelServiceName = "com.docker.swarm.service.name"
	labelTaskID      = "com.docker.swarm.task.id"
	labelTaskName    = "com.docker.swarm.task.name"
)

// safeName makes s usable as one path element: letters, digits and
// "._@-" are kept, anything else becomes "_", and a leading dot too (no
// "..", no hidden files).
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '@' || c == '.'
		if !ok || (i == 0 && c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// containerLogPath is where the output of a container of node goes,
// relative to the logs directory: under tasks/ for a swarm task (from its
// labels), else under the node's containers/.
func containerLogPath(node, id, name string, labels map[string]string) string {
	node = safeName(node)
	svc, task := labels[labelServiceName], labels[labelTaskID]
	if svc != "" && task != "" {
		// The task name label is "<service>.<slot>.<task id>" (or
		// "<service>.<node id>.<task id>" for a global service).
		tname := strings.TrimSuffix(labels[labelTaskName], "."+task)
		if tname == "" {
			tname = svc
		}
		return path.Join(tasksDir, safeName(svc), safeName(tname+"."+task+"@"+node)+logSuffix)
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		name = "container"
	}
	return path.Join(nodesDir, node, "containers", safeName(name+"."+shortID(id))+logSuffix)
}

// taskLabel is how a task's lines are prefixed, from its log file's name:
// "vote_db.1.<task id>@store.log" -> "vote_db.1.<12 digits of the id>@store",
// as docker service logs shows a task.
func taskLabel(file string) string {
	base := strings.TrimSuffix(strings.TrimSuffix(file, oldSuffix), logSuffix)
	at := strings.LastIndexByte(base, '@')
	name, node := base, ""
	if at >= 0 {
		name, node = base[:at], base[at:]
	}
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		name = name[:dot+1] + shortID(name[dot+1:])
	}
	return name + node
}

// formatLine is one line of a log file, with its newline. A message's own
// line end (and a carriage return before it) is dropped.
func formatLine(ts time.Time, stream string, msg []byte) []byte {
	msg = bytes.TrimSuffix(msg, []byte("\n"))
	msg = bytes.TrimSuffix(msg, []byte("\r"))
	out := make([]byte, 0, len(timeFormat)+len(stream)+len(msg)+3)
	out = ts.UTC().AppendFormat(out, timeFormat)
	out = append(out, ' ')
	out = append(out, stream...)
	out = append(out, ' ')
	out = append(out, msg...)
	return append(out, '\n')
}

// parseLine splits a line of a log file (without its newline). A line that
// does not start with a time and a stream (a line cut by a kill, a file
// written by hand) is kept whole as a message on stdout, with no time.
func parseLine(line string) (ts time.Time, stream, msg string, ok bool) {
	t, rest, found := strings.Cut(line, " ")
	if found {
		if parsed, err := time.Parse(time.RFC3339Nano, t); err == nil {
			s, m, _ := strings.Cut(rest, " ")
			if s == "stdout" || s == "stderr" {
				return parsed, s, m, true
			}
		}
	}
	return time.Time{}, "stdout", line, false
}

// splitTimestamp splits a line of the engine's log API with timestamps=1
// ("<RFC 3339 nano> <message>"); without a time it gives the zero time and
// the whole line.
func splitTimestamp(line []byte) (time.Time, []byte) {
	sp := bytes.IndexByte(line, ' ')
	if sp > 0 {
		if ts, err := time.Parse(time.RFC3339Nano, string(line[:sp])); err == nil {
			return ts, line[sp+1:]
		}
	}
	return time.Time{}, line
}
