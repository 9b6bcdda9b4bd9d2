package cursor

import (
	"context"
	"fmt"
	"slices"

	"github.com/fieldcrm/fieldcrm/models"
)

// keptRounds is how many of a device's latest pulls are kept: a device
// pushes with the cursor of its last pull, and pages on from it; a few more
// cover a response lost on the way and the pull sent again.
const keptRounds = 8

// RememberPull records that a device pulled from `from` and got `to` (more:
// the round is still paging; newTables: the tables a migration pull brings
// whole), so that its next push (sent with last_pulled_at = to) is judged
// against what the device had before this round's pull, and its next page
// knows where the round began. WatermelonDB applies a pull under the
// device's own changes, so only the cursor before the round tells a
// concurrent server edit from one the device had seen. Pages of one round
// share its start. The rounds are kept in the database: they must outlive
// a restart, and the in-process Redis of the default deployment does not.
func (s *Sequencer) RememberPull(ctx context.Context, tenant, user, device string, from, to int64, more bool, newTables []string) error {
	rounds, err := s.store.SyncRounds(ctx, tenant, user, device)
	if err != nil {
		return fmt.Errorf("remember pull of device %s: %w", device, err)
	}
	r := models.SyncRound{To: to, Base: from, More: more}
	start := from
	if prev, ok := roundAt(rounds, from); ok && prev.More {
		r.Base, start = prev.Base, prev.Start
	}
	if start == 0 {
		// A first sync: the device held none of the server's records before,
		// so it can only have edited what this round brought it, on every
		// page of it (each page's records are numbered after the one before).
		r.Base = to
	}
	if more {
		r.Start, r.NewTables = start, newTables
	}
	if old, ok := roundAt(rounds, to); ok && sameRound(old, r) {
		return nil // a pull that found nothing new, again: nothing to write
	}
	rounds = slices.DeleteFunc(rounds, func(k models.SyncRound) bool { return k.To == to })
	rounds = append(rounds, r)
	if len(rounds) > keptRounds {
		rounds = rounds[len(rounds)-keptRounds:]
	}
	if err := s.store.PutSyncRounds(ctx, tenant, user, device, rounds); err != nil {
		return fmt.Errorf("remember pull of device %s: %w", device, err)
	}
	return nil
}

// RoundOf returns where the sync round that `from` belongs to began, and
// the tables a migration pull brings whole in it: `from` itself and none,
// unless `from` is a page cursor of a round still paging (start 0 for a
// first sync that is paging).
func (s *Sequencer) RoundOf(ctx context.Context, tenant, user, device string, from int64) (start int64, newTables []string, err error) {
	rounds, err := s.store.SyncRounds(ctx, tenant, user, device)
	if err != nil {
		return 0, nil, fmt.Errorf("sync round of device %s: %w", device, err)
	}
	if r, ok := roundAt(rounds, from); ok && r.More {
		return r.Start, r.NewTables, nil
	}
	return from, nil, nil
}

// PushBase returns the cursor a device stood at before the pull that gave it
// pushedAt. pushedAt may be a page cursor of a round still paging:
// WatermelonDB pages by calling synchronize() again while has_more, and each
// call pushes after its pull, having kept its own edits over what the
// earlier pages brought. known is false when the server kept rounds of the
// device but not that one (dropped from the few kept): the push is then
// judged blind (see watermelon's pushBase). A device with no rounds kept at
// all last pulled from a server that kept them in Redis only (before they
// moved to the database): its push is judged from its cursor, as then.
func (s *Sequencer) PushBase(ctx context.Context, tenant, user, device string, pushedAt int64) (base int64, known bool, err error) {
	rounds, err := s.store.SyncRounds(ctx, tenant, user, device)
	if err != nil {
		return 0, false, fmt.Errorf("push base of device %s: %w", device, err)
	}
	if len(rounds) == 0 {
		return pushedAt, true, nil
	}
	r, ok := roundAt(rounds, pushedAt)
	return r.Base, ok, nil
}

// roundAt finds the round whose pull answered cursor to.
func roundAt(rounds []models.SyncRound, to int64) (models.SyncRound, bool) {
	i := slices.IndexFunc(rounds, func(r models.SyncRound) bool { return r.To == to })
	if i < 0 {
		return models.SyncRound{}, false
	}
	return rounds[i], true
}

// sameRound tells whether two records of a pull say the same.
func sameRound(a, b models.SyncRound) bool {
	return a.To == b.To && a.Base == b.Base && a.More == b.More && a.Start == b.Start && slices.Equal(a.NewTables, b.NewTables)
}
