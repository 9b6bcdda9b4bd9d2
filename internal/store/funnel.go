package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// FunnelReader answers a models.Funnel from a side table of the moves of
// customers' stage histories (see embedded.Moves).
type FunnelReader interface {
	// IndexMoves builds the side table of m, filled, unless it is there as
	// the code makes it; it says whether it built it.
	IndexMoves(ctx context.Context, m embedded.Moves) (bool, error)
	// Funnel counts the moves of f's period; embedded.ErrUntranslatable
	// says it cannot (a query it does not express, no side table).
	Funnel(ctx context.Context, m embedded.Moves, f models.Funnel) ([]models.FunnelCount, error)
}

// customerMoves are the moves the funnel counts: a customer's stage
// history, each item the stage moved into and when.
func customerMoves() embedded.Moves {
	return embedded.Moves{Coll: Customers, Array: "stage_history", To: "to", At: "at", Order: models.FunnelStages()}
}

// movesIndex is migration 17's index on MongoDB: the customers with a move
// since a time (multikey on the moves' times).
var movesIndex = index{name: "q_moves", keys: asc("tenant_id", "stage_history.at", "deleted_at")}

// indexMoves is migration 17: on MongoDB the index of the customers with
// a move since a time. The embedded engines keep a side table instead,
// made at start-up (see Migrate).
func indexMoves(ctx context.Context, s *Store) error {
	if s.tables != nil {
		return nil
	}
	return s.ensureIndexes(ctx, Customers, movesIndex)
}

// Funnel counts, for each stage of models.FunnelStages, the moves into it
// in f's period and those of them that advanced later, and the stays in it
// that ended in the period. On the embedded engines it is one statement
// over the side table of moves, two GROUP BYs each reading one range of an
// index's entries; on MongoDB the customers with a move since the period's start come
// from the multikey index of migration 17, and only their histories are
// read and counted here (MongoDB's $group cannot see an item's neighbours:
// when a stay ended, and whether a later move advanced). Stages come in
// no particular order; a stage with nothing to count may be missing.
func (s *Store) Funnel(ctx context.Context, f models.Funnel) ([]models.FunnelCount, error) {
	if direct, ok := s.tables.(FunnelReader); ok {
		counts, err := direct.Funnel(ctx, customerMoves(), f)
		if !errors.Is(err, embedded.ErrUntranslatable) {
			return counts, err
		}
	}
	counts, err := s.funnelOfHistories(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("funnel of tenant %s: %w", f.Tenant, err)
	}
	return counts, nil
}

// funnelOfHistories counts the moves from the histories of the customers
// with a move at or after the period's start: every move into a stage in
// the period, and every move ending a stay in it, is one.
func (s *Store) funnelOfHistories(ctx context.Context, f models.Funnel) ([]models.FunnelCount, error) {
	filter, _ := findArgs(f.Query)
	// Stored dates are milliseconds: bounds within one move up to the next.
	from, to := upToMilli(f.From), upToMilli(f.To)
	// A move counted, and the move that ends a stay counted, are at or after
	// from. (Bounded above too with $elemMatch, FerretDB found nothing.)
	filter = append(filter, bson.E{Key: "stage_history.at", Value: bson.D{{Key: "$gte", Value: from}}})
	cur, err := s.coll(Customers).Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "stage_history", Value: 1}}))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	rank := map[string]int{}
	stages := models.FunnelStages()
	for i, st := range stages {
		rank[st] = i + 1
	}
	counts := make([]models.FunnelCount, len(stages))
	for i, st := range stages {
		counts[i].Stage = st
	}
	within := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	for cur.Next(ctx) {
		var c struct {
			History []models.Transition `bson:"stage_history"`
		}
		if err := cur.Decode(&c); err != nil {
			return nil, err
		}
		h := c.History
		for i, move := range h {
			r := rank[move.To]
			if r == 0 {
				continue
			}
			n := &counts[r-1]
			if i+1 < len(h) && within(h[i+1].At) {
				n.Stays++
				n.StayMillis += h[i+1].At.UnixMilli() - move.At.UnixMilli()
			}
			if !within(move.At) {
				continue
			}
			n.Entered++
			for _, later := range h[i+1:] {
				if rank[later.To] > r {
					n.Advanced++
					break
				}
			}
		}
	}
	return counts, cur.Err()
}

// upToMilli is t, moved up to the next millisecond when within one.
func upToMilli(t time.Time) time.Time {
	if m := t.Truncate(time.Millisecond); m.Before(t) {
		return m.Add(time.Millisecond)
	}
	return t
}

// ExplainFunnel returns the embedded engine's plan for Funnel ("" on
// MongoDB, which plans for itself), for tests that check the funnel reads
// its index.
func (s *Store) ExplainFunnel(ctx context.Context, f models.Funnel) (string, error) {
	direct, ok := s.tables.(interface {
		ExplainFunnel(ctx context.Context, m embedded.Moves, f models.Funnel) (string, error)
	})
	if !ok {
		return "", nil
	}
	return direct.ExplainFunnel(ctx, customerMoves(), f)
}
