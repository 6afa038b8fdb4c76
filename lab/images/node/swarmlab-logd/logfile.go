package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// logFile is one log file being written, in the format of format.go.
type logFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	size int64
	last time.Time // the time of the last line in the file
}

// openLog opens path for appending, making its directory. A file that does
// not end its last line (its writer was killed in the middle of one) gets a
// line end first, so that the next line is a line of its own.
func openLog(path string) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	l := &logFile{path: path, f: f, size: st.Size()}
	tail := readTail(f, st.Size(), 64<<10)
	if len(tail) > 0 && tail[len(tail)-1] != '\n' {
		n, _ := f.Write([]byte("\n"))
		l.size += int64(n)
		tail = append(tail, '\n')
	}
	l.last = lastTime(tail)
	return l, nil
}

// readTail reads at most n bytes from the end of f, of size size.
func readTail(f *os.File, size, n int64) []byte {
	off := max(size-n, 0)
	buf := make([]byte, size-off)
	k, _ := f.ReadAt(buf, off)
	return buf[:k]
}

// lastTime is the time of the last line of tail that has one.
func lastTime(tail []byte) time.Time {
	lines := strings.Split(strings.TrimRight(string(tail), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if ts, _, _, ok := parseLine(lines[i]); ok {
			return ts
		}
	}
	return time.Time{}
}

// Last is the time of the last line written.
func (l *logFile) Last() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Write appends one line; a zero ts means now.
func (l *logFile) Write(ts time.Time, stream string, msg []byte) error {
	if ts.IsZero() {
		ts = time.Now()
	}
	line := formatLine(ts, stream, msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(line)) > maxFileSize {
		l.rotate()
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if ts.After(l.last) {
		l.last = ts
	}
	return err
}

// WriteRaw appends b, which must be one or more whole lines.
func (l *logFile) WriteRaw(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(b)) > maxFileSize {
		l.rotate()
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	return err
}

// rotate renames the file to its ".1" name and starts a new one; on any
// error it keeps writing where it was.
func (l *logFile) rotate() {
	if err := os.Rename(l.path, l.path+oldSuffix); err != nil {
		return
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	l.f.Close()
	l.f, l.size = f, 0
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// lineSplitter turns chunks of output into lines: Feed gives every complete
// line (without its newline), Flush what is left.
type lineSplitter struct{ partial []byte }

func (s *lineSplitter) Feed(chunk []byte, line func([]byte)) {
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			s.partial = append(s.partial, chunk...)
			return
		}
		if len(s.partial) > 0 {
			s.partial = append(s.partial, chunk[:i]...)
			line(s.partial)
			s.partial = s.partial[:0]
		} else {
			line(chunk[:i])
		}
		chunk = chunk[i+1:]
	}
}

func (s *lineSplitter) Flush(line func([]byte)) {
	if len(s.partial) > 0 {
		line(s.partial)
		s.partial = s.partial[:0]
	}
}

// copyLines copies r to pass as it comes (when pass is not nil) and writes
// each line to lf (when not nil) as stream, with the time it was read.
func copyLines(r io.Reader, pass io.Writer, lf *logFile, stream string) {
	var sp lineSplitter
	write := func(b []byte) {
		if lf != nil {
			lf.Write(time.Now(), stream, b)
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if pass != nil {
				pass.Write(buf[:n])
			}
			sp.Feed(buf[:n], write)
		}
		if err != nil {
			sp.Flush(write)
			return
		}
	}
}
