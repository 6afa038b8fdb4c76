package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeLogs makes a logs directory: files (relative path -> lines, each
// "<seconds after t0> <stream> <message>").
func writeLogs(t *testing.T, files map[string][]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, lines := range files {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		var b []byte
		for _, l := range lines {
			var sec int
			var stream, msg string
			f := strings.SplitN(l, " ", 3)
			for _, c := range f[0] {
				sec = sec*10 + int(c-'0')
			}
			stream, msg = f[1], f[2]
			b = append(b, formatLine(at(sec), stream, []byte(msg))...)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	taskA = "tasks/app_web/app_web.1.aaaaaaaaaaaaaaaaaaaaaaaaa@w1.log"
	taskB = "tasks/app_web/app_web.2.bbbbbbbbbbbbbbbbbbbbbbbbb@w2.log"
)

func sampleLogs(t *testing.T) string {
	return writeLogs(t, map[string][]string{
		taskA + oldSuffix: {"1 stdout a1", "3 stdout a3"},
		taskA:             {"5 stdout a5", "8 stderr a8 went wrong"},
		taskB:             {"2 stdout b2", "4 stdout b4", "6 stdout b6"},
		"tasks/app_db/app_db.1.ccccccccccccccccccccccccc@m1.log": {"1 stdout db"},
		"tasks/other_web/other_web.1.ddd@m1.log":                 {"1 stdout other"},
		"nodes/w1/dockerd.log":                                   {"1 stderr level=info msg=starting", "9 stderr level=info msg=stopping"},
	})
}

func read(t *testing.T, o readOptions) (string, string, error) {
	t.Helper()
	var out, errb syncBuffer
	o.stdout, o.stderr = &out, &errb
	err := readLogs(context.Background(), o)
	return out.String(), errb.String(), err
}

func TestReadMergesTasksInTimeOrder(t *testing.T) {
	dir := sampleLogs(t)
	out, errs, err := read(t, readOptions{dir: dir, target: "app_web", tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"app_web.1.aaaaaaaaaaaa@w1 | a1\n" +
		"app_web.2.bbbbbbbbbbbb@w2 | b2\n" +
		"app_web.1.aaaaaaaaaaaa@w1 | a3\n" +
		"app_web.2.bbbbbbbbbbbb@w2 | b4\n" +
		"app_web.1.aaaaaaaaaaaa@w1 | a5\n" +
		"app_web.2.bbbbbbbbbbbb@w2 | b6\n"
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if errs != "app_web.1.aaaaaaaaaaaa@w1 | a8 went wrong\n" {
		t.Errorf("stderr %q", errs)
	}
}

func TestReadSinceTailTimestamps(t *testing.T) {
	dir := sampleLogs(t)
	out, _, err := read(t, readOptions{dir: dir, target: "app_web", since: at(3), tail: 2, timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	// From a3 on, the last two lines (a8, on stderr, is one of them).
	want := "2024-05-01T08:00:06Z app_web.2.bbbbbbbbbbbb@w2 | b6\n"
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	out, errs, _ := read(t, readOptions{dir: dir, target: "app_web", since: at(3), tail: 0})
	if out != "" || errs != "" {
		t.Errorf("--tail 0 printed %q %q", out, errs)
	}
	out, _, _ = read(t, readOptions{dir: dir, target: "app_web", since: at(5), tail: -1})
	if out != "app_web.1.aaaaaaaaaaaa@w1 | a5\napp_web.2.bbbbbbbbbbbb@w2 | b6\n" {
		t.Errorf("--since: %q", out)
	}
}

func TestReadNodeLog(t *testing.T) {
	dir := sampleLogs(t)
	out, errs, err := read(t, readOptions{dir: dir, target: "w1", tail: -1})
	if err != nil || errs != "" {
		t.Fatal(err, errs)
	}
	if out != "level=info msg=starting\nlevel=info msg=stopping\n" {
		t.Errorf("node log %q", out)
	}
}

func TestResolve(t *testing.T) {
	dir := sampleLogs(t)
	for target, want := range map[string]string{"app_web": "service app_web", "db": "service app_db", "app_db": "service app_db", "w1": "node w1"} {
		kind, name, err := resolve(dir, target)
		if err != nil || kind+" "+name != want {
			t.Errorf("resolve(%q) = %s %s, %v; want %s", target, kind, name, err, want)
		}
	}
	if _, _, err := resolve(dir, "web"); err == nil || !strings.Contains(err.Error(), "app_web, other_web") {
		t.Errorf("an ambiguous name: %v", err)
	}
	if _, _, err := resolve(dir, "nope"); err == nil || !strings.Contains(err.Error(), "services: app_db, app_web, other_web; nodes: w1") {
		t.Errorf("an unknown name: %v", err)
	}
	for _, bad := range []string{"../etc", "", "a/b"} {
		if _, _, err := resolve(dir, bad); err == nil {
			t.Errorf("resolve(%q) worked", bad)
		}
	}
}

// A line cut by a kill is printed when reading (not when following: it
// may be in the middle of being written), and a line with no time stays
// after the line before it.
func TestReadCutAndUntimedLines(t *testing.T) {
	dir := writeLogs(t, map[string][]string{taskA: {"5 stdout a5"}, taskB: {"2 stdout b2", "7 stdout b7"}})
	f, _ := os.OpenFile(filepath.Join(dir, taskA), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("not a log line\n2024-05-01T08:00:0")
	f.Close()
	out, _, _ := read(t, readOptions{dir: dir, target: "web", tail: -1})
	want := "app_web.2.bbbbbbbbbbbb@w2 | b2\n" +
		"app_web.1.aaaaaaaaaaaa@w1 | a5\n" +
		"app_web.1.aaaaaaaaaaaa@w1 | not a log line\n" +
		"app_web.1.aaaaaaaaaaaa@w1 | 2024-05-01T08:00:0\n" +
		"app_web.2.bbbbbbbbbbbb@w2 | b7\n"
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// -f prints what is there, then each new line: of the tasks it knows, of
// a task that starts later, and across a rotation.
func TestFollow(t *testing.T) {
	dir := writeLogs(t, map[string][]string{taskA: {"1 stdout a1"}})
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- readLogs(ctx, readOptions{dir: dir, target: "web", tail: -1, follow: true, poll: 5 * time.Millisecond, stdout: &out, stderr: &errb})
	}()
	waitOut := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("stdout:\n%s\nwant:\n%s", out.String(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitOut("app_web.1.aaaaaaaaaaaa@w1 | a1\n")

	defer func(old int64) { maxFileSize = old }(maxFileSize)
	lf, _ := openLog(filepath.Join(dir, taskA))
	f, _ := os.OpenFile(filepath.Join(dir, taskA), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(string(formatLine(at(2), "stdout", []byte("a2")))[:20]) // half a line: not yet
	time.Sleep(30 * time.Millisecond)
	f.WriteString(string(formatLine(at(2), "stdout", []byte("a2")))[20:])
	f.Close()
	waitOut("app_web.1.aaaaaaaaaaaa@w1 | a1\napp_web.1.aaaaaaaaaaaa@w1 | a2\n")

	writeLogsInto(t, dir, taskB, "3 stdout b3")
	waitOut("app_web.1.aaaaaaaaaaaa@w1 | a1\napp_web.1.aaaaaaaaaaaa@w1 | a2\napp_web.2.bbbbbbbbbbbb@w2 | b3\n")

	lf.size = 0
	lf.Write(at(4), "stdout", []byte("a4"))
	maxFileSize = 1 // the next line rotates the file
	lf.Write(at(5), "stdout", []byte("a5"))
	lf.Close()
	waitOut("app_web.1.aaaaaaaaaaaa@w1 | a1\napp_web.1.aaaaaaaaaaaa@w1 | a2\napp_web.2.bbbbbbbbbbbb@w2 | b3\n" +
		"app_web.1.aaaaaaaaaaaa@w1 | a4\napp_web.1.aaaaaaaaaaaa@w1 | a5\n")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func writeLogsInto(t *testing.T, dir, rel, line string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	lf, err := openLog(p)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	f := strings.SplitN(line, " ", 3)
	sec := int(f[0][0] - '0')
	lf.Write(at(sec), f[1], []byte(f[2]))
}

func TestParseSince(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"10m":                       now.Add(-10 * time.Minute),
		"2024-05-01T10:00:00Z":      time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		"2024-05-01T10:00:00+02:00": time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC),
		"2024-05-01T10:00:00.5":     time.Date(2024, 5, 1, 10, 0, 0, 500000000, time.UTC),
		"2024-05-01":                time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
		"1714550400":                time.Unix(1714550400, 0),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseSince("yesterday", now); err == nil {
		t.Error("parseSince(yesterday) worked")
	}
}

func TestRunUsage(t *testing.T) {
	dir := sampleLogs(t)
	for _, args := range [][]string{{}, {"frob"}, {"logs"}, {"logs", "a", "b"}, {"logs", "--since", "soon", "w1"}} {
		var out, errb syncBuffer
		if code := run(context.Background(), args, nil, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"logs", "--dir", dir, "nope"}, nil, &out, &errb); code != 1 || !strings.HasPrefix(errb.String(), "swarmlab-logd: no service or node") {
		t.Errorf("unknown target: exit %d, stderr %q", code, errb.String())
	}
	out, errb = syncBuffer{}, syncBuffer{}
	if code := run(context.Background(), []string{"logs", "--dir", dir, "--tail", "1", "-t", "w1"}, nil, &out, &errb); code != 0 || out.String() != "2024-05-01T08:00:09Z level=info msg=stopping\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// A follower whose client went away (its stdin ends) stops.
func TestFollowStopsWhenStdinEnds(t *testing.T) {
	dir := sampleLogs(t)
	r, w, _ := os.Pipe()
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run(context.Background(), []string{"logs", "--dir", dir, "-f", "--stdin-eof", "--poll", "5ms", "w1"}, r, &out, &errb)
	}()
	time.Sleep(30 * time.Millisecond)
	w.Close()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "msg=stopping") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the follower did not stop when its stdin ended")
	}
}
