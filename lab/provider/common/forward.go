package common

import (
	"context"
	"io"
	"net"
	"time"
)

// Serve accepts connections on l until it is closed, and carries each to a
// connection dial makes (given timeout to make it): how a provider gives a
// target it reaches in its own way (over SSH, through a relay container) an
// address on this machine. Each direction is copied until its end, which is
// passed on as a half-close where the other side has one, so a request
// whose answer comes after the client stopped sending still gets it.
func Serve(l net.Listener, timeout time.Duration, dial func(context.Context) (net.Conn, error)) {
	for {
		local, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer local.Close()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			remote, err := dial(ctx)
			cancel()
			if err != nil {
				return
			}
			defer remote.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(remote, local)
				closeWrite(remote)
				close(done)
			}()
			io.Copy(local, remote)
			closeWrite(local)
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
