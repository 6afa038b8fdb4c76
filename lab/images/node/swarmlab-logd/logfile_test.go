package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var t0 = time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// A file its writer was killed in the middle of a line is taken up again:
// the cut line is ended, and the time of the last whole line is known, so
// that the output already there is not written twice.
func TestOpenLogTakesUpAKilledWriter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "b.log")
	lf, err := openLog(p)
	if err != nil {
		t.Fatal(err)
	}
	lf.Write(at(1), "stdout", []byte("one"))
	lf.Write(at(2), "stderr", []byte("two"))
	lf.Close()
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("2024-05-01T08:00:03.000000000Z stdout thr") // killed here
	f.Close()

	lf, err = openLog(p)
	if err != nil {
		t.Fatal(err)
	}
	if !lf.Last().Equal(at(3)) {
		t.Errorf("last time %v, want %v", lf.Last(), at(3))
	}
	lf.Write(at(4), "stdout", []byte("four"))
	lf.Close()
	want := "2024-05-01T08:00:01.000000000Z stdout one\n" +
		"2024-05-01T08:00:02.000000000Z stderr two\n" +
		"2024-05-01T08:00:03.000000000Z stdout thr\n" +
		"2024-05-01T08:00:04.000000000Z stdout four\n"
	if got := readFile(t, p); got != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
}

func TestLogFileRotates(t *testing.T) {
	defer func(old int64) { maxFileSize = old }(maxFileSize)
	maxFileSize = 100
	p := filepath.Join(t.TempDir(), "x.log")
	lf, err := openLog(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		lf.Write(at(i), "stdout", []byte("line "+string(rune('a'+i)))) // 48 bytes each
	}
	lf.Close()
	if got := readFile(t, p+oldSuffix); !strings.Contains(got, "line c") || strings.Contains(got, "line a") {
		t.Errorf("old file:\n%s", got)
	}
	if got := readFile(t, p); !strings.HasSuffix(got, "stdout line e\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("current file:\n%s", got)
	}
}

func frame(stream byte, s string) []byte {
	h := make([]byte, 8, 8+len(s))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

// The engine's multiplexed log stream, with timestamps, becomes lines of
// the log file: a line cut across frames is one line, each stream keeps
// its name, and lines not after the last one already written are skipped.
func TestCopyLogStream(t *testing.T) {
	var stream bytes.Buffer
	stream.Write(frame(1, "2024-05-01T08:00:01.000000000Z old, already in the file\n"))
	stream.Write(frame(1, "2024-05-01T08:00:02.500000000Z hello "))
	stream.Write(frame(2, "2024-05-01T08:00:03Z warning: x\n"))
	stream.Write(frame(1, "world\n2024-05-01T08:00:04.000000001Z bye\n"))
	stream.Write(frame(3, "engine message, not output\n"))
	stream.Write(frame(1, "2024-05-01T08:00:05Z cut at the end"))
	p := filepath.Join(t.TempDir(), "c.log")
	lf, _ := openLog(p)
	if err := copyLogStream(&stream, false, at(2), lf); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	// (A line is written when it ends: the engine sends whole lines, so
	// that keeps a file in time order.)
	want := "2024-05-01T08:00:03.000000000Z stderr warning: x\n" +
		"2024-05-01T08:00:02.500000000Z stdout hello world\n" +
		"2024-05-01T08:00:04.000000001Z stdout bye\n" +
		"2024-05-01T08:00:05.000000000Z stdout cut at the end\n"
	if got := readFile(t, p); got != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}

	// A TTY's stream is not multiplexed: all of it is stdout.
	p2 := filepath.Join(t.TempDir(), "tty.log")
	lf, _ = openLog(p2)
	copyLogStream(strings.NewReader("2024-05-01T08:00:01Z a\r\n2024-05-01T08:00:02Z b\r\n"), true, time.Time{}, lf)
	lf.Close()
	if got := readFile(t, p2); got != "2024-05-01T08:00:01.000000000Z stdout a\n2024-05-01T08:00:02.000000000Z stdout b\n" {
		t.Errorf("tty file:\n%s", got)
	}
}
