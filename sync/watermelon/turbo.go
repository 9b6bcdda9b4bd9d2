package watermelon

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/jsontext"
	"github.com/fieldcrm/fieldcrm/models"
)

// WholeFirstSync is a first sync sent in one response instead of pages:
// what WatermelonDB's Turbo Login takes (it applies only the first sync's
// response, and applies it whole, on the native side). Its body is a
// PullResult's, with every live record the user may read as created, none
// updated or deleted, has_more false. It is written as it is read, a chunk
// of records at a time, so the server's memory stays flat however large the
// territory: a paged pull builds its page before sending it.
type WholeFirstSync struct {
	e     *Engine
	actor models.Actor
	upTo  int64
}

// wholeSyncChunk is the most records a whole first sync reads at a time
// (the engine's page size when smaller).
const wholeSyncChunk = 500

// StartWholeFirstSync fixes where the first sync ends (the tenant's
// watermark, its timestamp) and records the pull for the device, so that
// its next pull goes on from there. Nothing is read yet: Send sends it.
func (e *Engine) StartWholeFirstSync(ctx context.Context, a models.Actor) (WholeFirstSync, error) {
	upTo, err := e.seq.Watermark(ctx, a.TenantID)
	if err != nil {
		return WholeFirstSync{}, fmt.Errorf("whole first sync of device %q: %w", a.DeviceID, err)
	}
	if err := e.seq.RememberPull(ctx, a.TenantID, a.UserID, a.DeviceID, 0, upTo, false, nil); err != nil {
		return WholeFirstSync{}, fmt.Errorf("whole first sync of device %q: %w", a.DeviceID, err)
	}
	return WholeFirstSync{e: e, actor: a, upTo: upTo}, nil
}

// Until is the sync number the first sync runs up to: its timestamp.
func (s WholeFirstSync) Until() int64 { return s.upTo }

// Send writes the body to w and returns how many records it holds. An
// error part-way leaves the body cut short (not valid JSON): the client
// finds nothing applied and starts the first sync again.
func (s WholeFirstSync) Send(ctx context.Context, w io.Writer) (records int, err error) {
	tables := slices.SortedFunc(slices.Values(s.e.tables), func(x, y table) int {
		return strings.Compare(x.schema().Name, y.schema().Name)
	})
	out := &chunkWriter{w: w, buf: make([]byte, 0, 64<<10)}
	out.buf = append(out.buf, `{"changes":{`...)
	for i, t := range tables {
		if i > 0 {
			out.buf = append(out.buf, ',')
		}
		out.buf = jsontext.AppendString(out.buf, t.schema().Name)
		out.buf = append(out.buf, `:{"created":[`...)
		n, err := s.writeTable(ctx, t, out)
		records += n
		if err != nil {
			return records, fmt.Errorf("table %s: %w", t.schema().Name, err)
		}
		out.buf = append(out.buf, `],"updated":[],"deleted":[]}`...)
	}
	out.buf = append(out.buf, `},"timestamp":`...)
	out.buf = strconv.AppendInt(out.buf, s.upTo, 10)
	out.buf = append(out.buf, `,"has_more":false}`...)
	return records, out.flush()
}

// writeTable writes the table's live records up to the watermark, then its
// late creations (see Engine.lateCreations): records changed again above
// the watermark while the first sync ran, which the read up to it skipped.
// WatermelonDB refuses a response that names a record twice, and two reads
// can find one record: one changed after the read up to the watermark passed
// it is found by both (it is sent once, in the version read first, as a
// paged pull does), and one changed again while the late ones are read is
// found on two of their pages. The ids read up to the watermark are kept as
// 64-bit hashes (800 KB for 100,000 records, not the ids themselves), with a
// seed of their own per table; the late ones, few, as they are. A late id
// sharing its hash with one sent (at 100,000 records sent, about one chance
// in 10^14 per late record) is left to the next pull, which sends it as
// updated, a record the device lacks (WatermelonDB then creates it, logging
// an error).
func (s WholeFirstSync) writeTable(ctx context.Context, t table, out *chunkWriter) (int, error) {
	seed := maphash.MakeSeed()
	var sent []uint64
	var keys []string
	write := func(c change) error {
		if len(sent) > 0 {
			out.buf = append(out.buf, ',')
		}
		var err error
		if out.buf, keys, err = appendRow(out.buf, c.record, keys); err != nil {
			return fmt.Errorf("record %s: %w", c.id, err)
		}
		sent = append(sent, maphash.String(seed, c.id))
		return nil
	}
	chunk := min(wholeSyncChunk, s.e.pageSize)
	for after := int64(0); ; {
		found, err := t.changes(ctx, s.actor, after, s.upTo, chunk, crm.LiveSeen)
		if err != nil {
			return len(sent), err
		}
		for _, c := range found {
			if !c.gone {
				if err := write(c); err != nil {
					return len(sent), err
				}
			}
		}
		if err := out.flush(); err != nil {
			return len(sent), err
		}
		if len(found) < chunk {
			break
		}
		after = found[len(found)-1].seq
	}
	late, err := s.e.lateOf(ctx, s.actor, t, 0, s.upTo, false)
	if err != nil {
		return len(sent), err
	}
	read := len(sent)
	slices.Sort(sent[:read])
	lateSent := map[string]bool{}
	for _, c := range late {
		if _, found := slices.BinarySearch(sent[:read], maphash.String(seed, c.id)); found || lateSent[c.id] {
			continue
		}
		lateSent[c.id] = true
		if err := write(c); err != nil {
			return len(sent), err
		}
	}
	return len(sent), nil
}

// chunkWriter gathers the body of a chunk of records in buf and hands it
// to w whole.
type chunkWriter struct {
	w   io.Writer
	buf []byte
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}
