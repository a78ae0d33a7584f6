//go:build unix

package h1

import "syscall"

// alive reports whether c's peer has left it open while it sat idle: a
// non-blocking peek that finds the end of the stream, an error or bytes
// nobody asked for means the connection is no use. It costs one system
// call and never waits. Without a reader goroutine this is how h1 learns,
// before sending a request, what net/http's readLoop learns while the
// connection is idle.
func (c *conn) alive() bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true // not a socket (an in-memory conn in tests): assume so
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // done: never wait for readiness
	})
	return err == nil && alive
}
