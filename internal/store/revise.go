package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// reviseBudget bounds how long Revise keeps reading a record again after
// another writer committed a version first. It is a time, not a count of
// tries: with dozens of writers on one record (a customer's points while a
// team's phones push at once) one writer may lose many rounds in a row,
// and a count that suffices on a quiet machine runs out on a loaded one.
// The pauses between tries grow to maxReviseBackoff and are jittered, so
// the losers do not collide again in step.
const (
	reviseBudget     = 10 * time.Second
	maxReviseBackoff = 50 * time.Millisecond
)

// Revise is the versioned read-modify-write of one record, the one way
// every collection changes a record it has read: CRM records and device
// sets alike. It reads record id of tenant from coll into rec (a pointer to
// a record type, one that embeds models.Meta), or leaves rec at its zero
// value when there is none, and calls edit to change *rec in place and fill
// in the Revision. Unless edit returns an error or skips, Revise stamps the
// next version on rec (id, tenant, version, who and when) and writes it
// with its audit entry: through Commit, or Insert for a new record.
//
// When another writer committed the version first (or created the record
// first), Revise pauses and starts again from a fresh read, so no writer's
// change is lost. Losers in this process retry one at a time (turns), so a
// crowd of writers on one record does not starve any of them. Once
// reviseBudget has passed Revise returns the models.ErrConflict. An error
// from edit ends Revise with that error.
func (s *Store) Revise(ctx context.Context, coll, tenant, id string, rec any, edit func(rev *models.Revision) error) error {
	record, ok := rec.(models.Record)
	target := reflect.ValueOf(rec)
	if !ok || target.Kind() != reflect.Pointer || target.IsNil() {
		return fmt.Errorf("revise %s %s: %T is not a pointer to a record", coll, id, rec)
	}
	deadline := time.Now().Add(reviseBudget)
	var queued bool
	for attempt := 1; ; attempt++ {
		// Decoding leaves fields the stored document lacks as they were:
		// each try starts from nothing.
		target.Elem().SetZero()
		err := s.Get(ctx, coll, tenant, id, rec)
		found := err == nil
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		m := record.Header()
		read := m.Version
		rev := models.Revision{Found: found}
		if err := edit(&rev); err != nil {
			return err
		}
		if rev.Skip {
			return nil
		}
		if rev.At.IsZero() {
			return fmt.Errorf("revise %s %s: the edit says no time of change", coll, id)
		}
		m.ID, m.TenantID, m.Version = id, tenant, read+1
		m.UpdatedAt, m.UpdatedBy = rev.At, rev.By
		if !found {
			m.CreatedAt, m.CreatedBy = rev.At, rev.By
		}
		entry := models.AuditEntry{Action: rev.Action, Changes: rev.Changes}
		write := func(ctx context.Context) error {
			if found {
				return s.Commit(ctx, coll, m, rec, entry)
			}
			return s.Insert(ctx, coll, m, rec, entry)
		}
		if rev.Around != nil {
			err = rev.Around(ctx, write)
		} else {
			err = write(ctx)
		}
		if !errors.Is(err, models.ErrConflict) {
			return err
		}
		keepsChanging := fmt.Errorf("%s %s keeps changing (%d tries): %w", coll, id, attempt, err)
		if time.Now().After(deadline) {
			return keepsChanging
		}
		if !queued {
			// Lost a round: retry in turn with this process's other losers.
			release, terr := s.turns.take(ctx, coll+"/"+tenant+"/"+id, deadline)
			if errors.Is(terr, errTurnTimedOut) {
				return keepsChanging
			}
			if terr != nil {
				return terr
			}
			defer release()
			queued = true
			continue // the turn came after the others' writes: read again at once
		}
		// The winner may not have written its version yet; reading again at
		// once would find the same version again.
		backoff := min(time.Duration(attempt*attempt)*time.Millisecond, maxReviseBackoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff + rand.N(backoff)):
		}
	}
}
