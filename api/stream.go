package api

import (
	"bufio"
	"context"
	"io"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/klauspost/compress/gzip"
)

// streamBody has write produce the response's body after the handler
// returns, so write gets a context of its own: the request's values and a
// deadline of timeout. finish learns how it ended (write's error, or the
// connection's). With compress, the body is gzip-compressed here when the
// client accepts it: fasthttp's own compression of a streamed body flushes
// the compressor after every 4 KiB it copies, which made a whole first sync
// a fifth larger on the wire and cost a write to the socket per flush.
func streamBody(c *fiber.Ctx, timeout time.Duration, compress bool, write func(ctx context.Context, w io.Writer) error, finish func(ctx context.Context, err error)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), timeout)
	conn := c.Context().Conn()
	zipped := compress && c.Context().Request.Header.HasAcceptEncoding("gzip")
	if zipped {
		c.Set(fiber.HeaderContentEncoding, "gzip") // fasthttp leaves an encoded body as it is
		c.Vary(fiber.HeaderAcceptEncoding)
	}
	c.Context().SetBodyStreamWriter(func(bw *bufio.Writer) {
		defer cancel()
		var out io.Writer = &progressWriter{w: bw, conn: conn}
		var zw *gzip.Writer
		if zipped {
			zw, _ = gzip.NewWriterLevel(out, gzip.BestSpeed) // a valid level: no error
			out = zw
		}
		err := write(ctx, out)
		if zw != nil {
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}
		extendWriteDeadline(conn)
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		finish(ctx, err)
	})
}

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
