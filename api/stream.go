package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fasthttp"
)

// streamBody has write produce the response's body after the handler
// returns, so write gets a context of its own: the request's values and a
// deadline of timeout. finish learns how it ended (write's error, or the
// connection's). With compress, the body is gzip-compressed here when the
// client accepts it: fasthttp's own compression of a streamed body flushes
// the compressor after every 4 KiB it copies, which made a whole first sync
// a quarter larger on the wire and cost a write to the socket per flush (the
// server's compression leaves streamed bodies alone, see compressBuffered).
//
// A body that fails part-way must not look whole to the client: the
// connection is closed before the chunked encoding's last chunk (and the
// gzip trailer), so a cut-short CSV cannot pass for a shorter export. A
// panic in write, which runs outside the handlers' recovery, ends the body
// the same way instead of the process.
func streamBody(c *fiber.Ctx, timeout time.Duration, compress bool, write func(ctx context.Context, w io.Writer) error, finish func(ctx context.Context, err error)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), timeout)
	conn := c.Context().Conn()
	zipped := compress && c.Context().Request.Header.HasAcceptEncoding("gzip")
	if zipped {
		c.Set(fiber.HeaderContentEncoding, "gzip")
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
		err := writeRecovering(ctx, out, write)
		if err == nil && zw != nil {
			err = zw.Close()
		}
		if err == nil {
			extendWriteDeadline(conn)
			err = bw.Flush()
		}
		if err != nil && conn != nil {
			_ = conn.Close()
		}
		finish(ctx, err)
	})
}

// writeRecovering runs write, turning a panic into an error.
func writeRecovering(ctx context.Context, w io.Writer, write func(ctx context.Context, w io.Writer) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while streaming: %v", r)
		}
	}()
	return write(ctx, w)
}

// compressBuffered compresses answers built in memory, for clients that
// accept it. Streamed bodies compress themselves (streamBody) or must stay
// as they are (an XLSX export is a zip already).
func compressBuffered() fiber.Handler {
	compress := fasthttp.CompressHandlerBrotliLevel(func(*fasthttp.RequestCtx) {}, fasthttp.CompressBrotliBestSpeed, fasthttp.CompressBestSpeed)
	return func(c *fiber.Ctx) error {
		if err := c.Next(); err != nil {
			return err
		}
		if !c.Response().IsBodyStream() {
			compress(c.Context())
		}
		return nil
	}
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
