package api

import (
	"net"
	"sync"
	"time"
)

// silentAfter is how long a connection may stay open without sending a byte
// before shutdown treats it as idle, as net/http does with new connections.
const silentAfter = 5 * time.Second

// quietListener remembers the connections that have not sent a byte yet.
//
// Why: fasthttp marks a connection active as soon as it is accepted and then
// waits up to ReadTimeout (30 s) for its first request; its Shutdown closes
// only idle keep-alive connections. An HTTP client that dialled a spare
// connection and never used it (Go's transport does this when two requests
// race for one) therefore held shutdown until its timeout, and SIGTERM ended
// in "context deadline exceeded". There is no request on such a connection to
// let finish, so shutdown closes it.
type quietListener struct {
	net.Listener

	mu     sync.Mutex
	silent map[*quietConn]time.Time // accepted, not a byte read yet
}

func newQuietListener(ln net.Listener) *quietListener {
	return &quietListener{Listener: ln, silent: map[*quietConn]time.Time{}}
}

func (l *quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	qc := &quietConn{Conn: c, owner: l}
	l.mu.Lock()
	l.silent[qc] = time.Now()
	l.mu.Unlock()
	return qc, nil
}

// closeSilent closes the connections that have sent nothing for at least
// silentAfter and returns how many it closed.
func (l *quietListener) closeSilent(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	closed := 0
	for c, accepted := range l.silent {
		if now.Sub(accepted) >= silentAfter {
			delete(l.silent, c)
			_ = c.Conn.Close()
			closed++
		}
	}
	return closed
}

func (l *quietListener) spoke(c *quietConn) {
	l.mu.Lock()
	delete(l.silent, c)
	l.mu.Unlock()
}

// quietConn tells its listener when it first reads a byte or closes.
type quietConn struct {
	net.Conn
	owner *quietListener

	once sync.Once
}

func (c *quietConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { c.owner.spoke(c) })
	}
	return n, err
}

func (c *quietConn) Close() error {
	c.once.Do(func() { c.owner.spoke(c) })
	return c.Conn.Close()
}
