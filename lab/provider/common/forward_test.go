package common

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// A target that answers only once its client stopped sending (reads to EOF,
// then writes) still gets its answer through: the client's half-close is
// passed on, and the copy back goes on after it.
func TestServeCarriesAnAnswerAfterTheClientsHalfClose(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the client's half-close
		time.Sleep(50 * time.Millisecond)
		c.Write(append([]byte("got "), b...))
	}()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go Serve(l, time.Second, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", target.Addr().String())
	})

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got ping" {
		t.Errorf("through Serve: %q, %v; want %q", got, err, "got ping")
	}
}
