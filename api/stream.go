package api

import (
	"io"
	"net"
	"time"
)

// streamWriteWindow is how long a streamed response may go without a byte
// written before the connection gives up. The server's write timeout (60 s)
// bounds a whole response; a large export takes longer, so the stream moves
// the deadline on as long as it makes progress.
const streamWriteWindow = time.Minute

func extendWriteDeadline(conn net.Conn) {
	if conn != nil {
		_ = conn.SetWriteDeadline(time.Now().Add(streamWriteWindow))
	}
}

// progressWriter extends the connection's write deadline as it writes (at
// most once a second, a clock read per write otherwise).
type progressWriter struct {
	w        io.Writer
	conn     net.Conn
	extended time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if now := time.Now(); now.Sub(p.extended) > time.Second {
		extendWriteDeadline(p.conn)
		p.extended = now
	}
	return p.w.Write(b)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
