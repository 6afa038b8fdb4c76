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

// A Loopback gives a target one address on 127.0.0.1 for as long as it
// lives, carries connections there to the target, and after Close listens
// no more.
func TestLoopbackKeepsATargetsAddressUntilClose(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	dialled := make(chan string, 10)
	b := NewLoopback("test", time.Second, func(ctx context.Context, to string) (net.Conn, error) {
		dialled <- to
		var d net.Dialer
		return d.DialContext(ctx, "tcp", target.Addr().String())
	})
	addr, err := b.Addr("10.0.0.10:8080")
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Errorf("Addr = %s, want one on 127.0.0.1", addr)
	}
	if again, _ := b.Addr("10.0.0.10:8080"); again != addr {
		t.Errorf("Addr again = %s, want the same %s", again, addr)
	}
	if f := b.Forwards(); len(f) != 1 || f["10.0.0.10:8080"] != addr {
		t.Errorf("Forwards = %v", f)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "hello" || len(dialled) != 1 || <-dialled != "10.0.0.10:8080" {
		t.Errorf("through the loopback: %q, want the target's hello from a dial of 10.0.0.10:8080", got)
	}
	b.Close()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts after Close", addr)
	}
	if _, err := b.Addr("10.0.0.11:80"); err == nil {
		t.Error("Addr after Close did not fail")
	}
	if f := b.Forwards(); len(f) != 0 {
		t.Errorf("Forwards after Close = %v", f)
	}
}
