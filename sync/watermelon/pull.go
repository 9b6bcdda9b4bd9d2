package watermelon

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// TableChanges are one table's changes, in WatermelonDB's shape.
type TableChanges struct {
	Created []map[string]any `json:"created"`
	Updated []map[string]any `json:"updated"`
	Deleted []string         `json:"deleted"`
}

// PullResult is the body of a pull: WatermelonDB reads changes and timestamp;
// HasMore (also sent as the X-Sync-Has-More header) tells a client to pull again
// at once with the new timestamp.
type PullResult struct {
	Changes   map[string]*TableChanges `json:"changes"`
	Timestamp int64                    `json:"timestamp"`
	HasMore   bool                     `json:"has_more"`
	// Until is the sync number this round of pulls runs up to (the tenant's
	// watermark when the page was read): a client pulling pages measures its
	// progress as how far Timestamp went from where it started towards it.
	// Sent as the X-Sync-Until header, never in the body, so that a first
	// pull's body stays what WatermelonDB's Turbo Login takes as it is.
	Until int64 `json:"-"`
}

// Pull returns the changes after lastPulledAt (0 for a first sync) that the
// actor may see, at most one page, and the cursor to pull from next.
//
// The cursor never passes a change that was not returned: it stops at the
// watermark (below every write still in flight) or, when the page is full, at
// the last change in it. A first sync returns every live record the user may
// read and no deletions.
//
// A migration pull (mig not nil) also returns, in full, every record of the
// tables and columns the app's schema gained: new tables' records as created,
// the other tables' as updated. Its pages may run below lastPulledAt; the
// records that come twice that way arrive as updated, which WatermelonDB
// applies as it should.
func (e *Engine) Pull(ctx context.Context, a models.Actor, lastPulledAt int64, mig *Migration) (PullResult, error) {
	upTo, err := e.seq.Watermark(ctx, a.TenantID)
	if err != nil {
		return PullResult{}, err
	}
	if lastPulledAt > 0 {
		floor, err := e.tombstones.SyncFloor(ctx, a.TenantID)
		if err != nil {
			return PullResult{}, err
		}
		if lastPulledAt < floor {
			return PullResult{}, fmt.Errorf("cursor %d is below the sync floor %d: %w", lastPulledAt, floor, models.ErrResyncRequired)
		}
	}
	if lastPulledAt > upTo {
		// Every cursor handed out is at or below the tenant's reservation, and
		// the watermark never goes back: a cursor ahead of it comes from a
		// database since restored from a backup, or from another server.
		return PullResult{}, fmt.Errorf("cursor %d is ahead of this server's changes (%d): %w", lastPulledAt, upTo, models.ErrResyncRequired)
	}
	out := PullResult{Changes: map[string]*TableChanges{}, Timestamp: upTo, Until: upTo}
	for _, t := range e.tables {
		out.Changes[t.schema().Name] = &TableChanges{Created: []map[string]any{}, Updated: []map[string]any{}, Deleted: []string{}}
	}
	if lastPulledAt == upTo && mig == nil {
		return out, e.seq.RememberPull(ctx, a.TenantID, a.UserID, a.DeviceID, lastPulledAt, upTo, false, nil) // nothing new: no query
	}
	// Pages after the first of a round report what the device lacked at the
	// round's start as created, as WatermelonDB expects of a first sync.
	start, newTables, err := e.seq.RoundOf(ctx, a.TenantID, a.UserID, a.DeviceID, lastPulledAt)
	if err != nil {
		return PullResult{}, err
	}
	if mig != nil {
		newTables = mig.Tables
	}
	all, err := e.firstChanges(ctx, a, lastPulledAt, upTo, mig, e.pageSize+1)
	if err != nil {
		return PullResult{}, err
	}
	if len(all) > e.pageSize {
		all = all[:e.pageSize]
		out.HasMore = true
		out.Timestamp = all[len(all)-1].seq
	}
	if !out.HasMore {
		// The round ends here, at upTo: what it did not bring must reach the
		// device by later pulls as updates, so it must hold every record
		// created in the round that is live now.
		late, err := e.lateCreations(ctx, a, start, upTo, newTables)
		if err != nil {
			return PullResult{}, err
		}
		all = withLate(all, late)
	}
	for _, c := range all {
		tc := out.Changes[c.table]
		switch {
		case c.gone && (lastPulledAt == 0 || !c.mayHold || c.seq <= start):
			// nothing to delete: a first sync, a record never on this user's
			// devices, or a deletion the device had (a migration pull's rereads)
		case c.gone:
			tc.Deleted = append(tc.Deleted, c.id)
		case start == 0 || (c.createdSeq > start && !c.createdHere) || slices.Contains(newTables, c.table):
			// A first sync holds nothing, also what this device created
			// before (it pulls from null after a 410 reset).
			tc.Created = append(tc.Created, c.record)
		default:
			tc.Updated = append(tc.Updated, c.record)
		}
	}
	return out, e.seq.RememberPull(ctx, a.TenantID, a.UserID, a.DeviceID, lastPulledAt, out.Timestamp, out.HasMore, newTables)
}

// firstChanges returns the first want changes of every table, in sync
// number order, after lastPulledAt (after 0 for a migration's tables) up to
// upTo. It merges the tables' changes as it reads them, a chunk at a time, so
// that a page reads about want records in all and a few chunks beyond: read
// whole, every table gave a page's worth, most of them decoded and dropped
// (a first sync of three large tables read three times what it sent). It
// reads only records the pull may send (see crm.Narrowing): a rep's pull
// read, and decoded, the records of the whole tenant.
func (e *Engine) firstChanges(ctx context.Context, a models.Actor, lastPulledAt, upTo int64, mig *Migration, want int) ([]change, error) {
	chunk := max(want/4, 1)
	narrow := crm.MayHold
	if lastPulledAt == 0 {
		narrow = crm.LiveSeen
	}
	type source struct {
		t     table
		after int64
		read  []change // read and not yet merged
		done  bool     // nothing left to read
	}
	sources := make([]*source, len(e.tables))
	for i, t := range e.tables {
		sources[i] = &source{t: t, after: lastPulledAt}
		if mig.names(t.schema().Name) {
			sources[i].after = 0
		}
	}
	var out []change
	for len(out) < want {
		var next *source
		for _, s := range sources {
			if len(s.read) == 0 && !s.done {
				found, err := s.t.changes(ctx, a, s.after, upTo, chunk, narrow)
				if err != nil {
					return nil, err
				}
				s.read, s.done = found, len(found) < chunk
				if len(found) > 0 {
					s.after = found[len(found)-1].seq
				}
			}
			if len(s.read) > 0 && (next == nil || s.read[0].seq < next.read[0].seq) {
				next = s
			}
		}
		if next == nil {
			break
		}
		out = append(out, next.read[0])
		next.read = next.read[1:]
	}
	return out, nil
}

// lateCreations returns the records a round ending at upTo would otherwise
// miss for good: created within the round (after start, at or below upTo, or
// of a table new to the device) but changed again above upTo between the
// watermark and the round's queries. Only the latest version of a record is
// stored, so a query of (after, upTo] skips them; the next round would send
// them as updated, and WatermelonDB cannot update a record it never received
// (it creates it instead, logging a serious error).
// They come now, in their newer version, and again, as updated, next round.
// Writes in flight during a pull are few, so this reads little.
func (e *Engine) lateCreations(ctx context.Context, a models.Actor, start, upTo int64, newTables []string) ([]change, error) {
	var late []change
	for _, t := range e.tables {
		found, err := e.lateOf(ctx, a, t, start, upTo, slices.Contains(newTables, t.schema().Name))
		if err != nil {
			return nil, err
		}
		late = append(late, found...)
	}
	return late, nil
}

// lateOf is lateCreations for one table; isNew says the table is new to the
// device, so that every live record of it counts.
func (e *Engine) lateOf(ctx context.Context, a models.Actor, t table, start, upTo int64, isNew bool) ([]change, error) {
	var late []change
	after := upTo
	for {
		found, err := t.changes(ctx, a, after, math.MaxInt64, e.pageSize, crm.AllChanges)
		if err != nil {
			return nil, err
		}
		for _, c := range found {
			// A first sync (start 0) brings the device's own creations too:
			// it pulls from null after a 410 reset, holding nothing.
			inRound := c.createdSeq > start && c.createdSeq <= upTo && (!c.createdHere || start == 0)
			if !c.gone && (inRound || isNew) {
				late = append(late, c)
			}
		}
		if len(found) < e.pageSize {
			return late, nil
		}
		after = found[len(found)-1].seq
	}
}

// withLate adds the late records to a round's changes, except those already
// in them: a record changed between the round's query and the late one is
// found by both, and WatermelonDB refuses a response that names a record
// twice. The version found first is kept; the newer comes next round.
func withLate(all, late []change) []change {
	have := make(map[string]bool, len(all))
	for _, c := range all {
		have[c.table+"/"+c.id] = true
	}
	for _, c := range late {
		if key := c.table + "/" + c.id; !have[key] {
			have[key] = true // a record changed again while the late ones were read comes twice
			all = append(all, c)
		}
	}
	return all
}

// Migration is WatermelonDB's migration sync: the app's local schema grew
// from version From by these tables and columns since its last pull.
type Migration struct {
	From    int                `json:"from"`
	Tables  []string           `json:"tables"`
	Columns []MigrationColumns `json:"columns"`
}

// MigrationColumns are the columns a migration added to one table.
type MigrationColumns struct {
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
}

// names reports whether the migration adds table or columns to it.
func (m *Migration) names(table string) bool {
	if m == nil {
		return false
	}
	return slices.Contains(m.Tables, table) || slices.ContainsFunc(m.Columns, func(c MigrationColumns) bool { return c.Table == table })
}

// CheckMigration refuses a migration without a schema version to come from.
// Tables and columns this server does not sync are not refused: an app may
// keep tables of its own on the device, and the server has none of their
// records to send.
func CheckMigration(m Migration) error {
	if m.From < 1 {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "migration.from",
			Message: "must be the schema version the app migrated from (1 or more)"}}}
	}
	return nil
}

// DefaultTombstoneRetention is how long deletions are kept for devices that
// are offline: 90 days.
const DefaultTombstoneRetention = 90 * 24 * time.Hour

// Purge deletes for good the tombstones deleted before `before`, in every
// tenant and synced table. Each tenant's sync floor is raised past them first,
// so a device whose cursor is older gets "resync required" instead of silently
// keeping records deleted long ago. Any replica may run it: the floor only
// rises, and purging an id twice is a no-op.
func (e *Engine) Purge(ctx context.Context, before time.Time) (int, error) {
	tenants, err := e.tombstones.TenantIDs(ctx)
	if err != nil {
		return 0, err
	}
	purged := 0
	for _, tenant := range tenants {
		for _, t := range e.tables {
			coll := t.schema().Name
			for {
				ids, highest, err := e.tombstones.Tombstones(ctx, coll, tenant, before, 500)
				if err != nil || len(ids) == 0 {
					if err != nil {
						return purged, err
					}
					break
				}
				if err := e.tombstones.RaiseSyncFloor(ctx, tenant, highest); err != nil {
					return purged, err
				}
				if err := e.tombstones.PurgeRecords(ctx, coll, tenant, ids); err != nil {
					return purged, err
				}
				purged += len(ids)
			}
		}
	}
	return purged, nil
}
