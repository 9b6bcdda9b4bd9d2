package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// TallyReader answers a models.Tally without the query engine (see
// embedded.Tables.Tally).
type TallyReader interface {
	Tally(ctx context.Context, coll string, fields embedded.Fields, t models.Tally, index string) ([]models.TallyGroup, error)
}

// Tally counts the records t selects by the values of t.By, and sums t.Sum
// per group. On the embedded engines it is one GROUP BY read from the
// collection's tally index that holds every field it uses (queryIndexes'
// "tally_" indexes); on MongoDB an aggregation ($match, $group) over the
// same indexes. Groups come in no particular order.
func (s *Store) Tally(ctx context.Context, coll string, t models.Tally) ([]models.TallyGroup, error) {
	if direct, ok := s.tables.(TallyReader); ok {
		if fields, known := queryFields[coll]; known {
			ctx, done := s.observe(ctx, "direct_tally")
			groups, err := direct.Tally(ctx, coll, fields, t, TallyIndex(coll, t))
			done(err)
			if !errors.Is(err, embedded.ErrUntranslatable) {
				return groups, err // days grouped in SQL already
			}
		}
	}
	groups, err := s.tallyByAggregation(ctx, coll, t)
	if err != nil {
		return nil, fmt.Errorf("tally %s of tenant %s: %w", coll, t.Tenant, err)
	}
	return mergeGroups(groups, t), nil
}

// TallyIndex names the first tally index of coll that holds every field t
// reads, "" when none does (the engine then chooses, and
// TestEveryReportReadsAnIndex fails).
func TallyIndex(coll string, t models.Tally) string {
	used := append(append(append([]string{"tenant_id"}, t.By...), t.Sum...), "deleted_at")
	for _, c := range t.Conds {
		used = append(used, c.Field)
	}
	if !t.Scope.All {
		used = append(used, "owner_id", "team_id")
	}
	if t.OrAssignee != "" {
		used = append(used, "assignee_id")
	}
	for _, ix := range queryIndexes[coll] {
		if strings.HasPrefix(ix.Name, "tally_") && !slices.ContainsFunc(used, func(f string) bool { return !slices.Contains(ix.Fields, f) }) {
			return ix.Name
		}
	}
	return ""
}

// tallyIndexer keeps, on PostgreSQL, the side table a collection's tallies
// read (see embedded.Tables.IndexTallies).
type tallyIndexer interface {
	IndexTallies(ctx context.Context, coll string, indexes []embedded.Index, fields embedded.Fields) (bool, error)
}

// indexTallies builds the side tables of tallies of every collection with
// tally indexes, unless they are there as the code makes them; it returns
// the collections whose table it built.
func indexTallies(ctx context.Context, direct tallyIndexer) ([]string, error) {
	var built []string
	for _, coll := range slices.Sorted(maps.Keys(queryIndexes)) {
		var tallies []embedded.Index
		for _, ix := range queryIndexes[coll] {
			if indexGroup(ix.Name) == "tally_" {
				tallies = append(tallies, ix)
			}
		}
		ok, err := direct.IndexTallies(ctx, coll, tallies, queryFields[coll])
		if err != nil {
			return built, err
		}
		if ok {
			built = append(built, coll)
		}
	}
	return built, nil
}

// tallyByAggregation asks MongoDB for the groups: $match with the filter
// of t's Query, $group by its fields; one aggregation for the counts and
// one for each sum, since FerretDB computes only the first accumulator of
// a $group (FerretDB issue 4616) and its $addFields, which would let one
// pass do, copies no nested field.
func (s *Store) tallyByAggregation(ctx context.Context, coll string, t models.Tally) ([]models.TallyGroup, error) {
	filter, _ := findArgs(t.Query)
	key := bson.D{}
	for i, f := range t.By {
		key = append(key, bson.E{Key: fmt.Sprintf("k%d", i), Value: "$" + f})
	}
	var out []models.TallyGroup
	at := map[string]int{}
	for pass := -1; pass < len(t.Sum); pass++ {
		pipeline := bson.A{bson.D{{Key: "$match", Value: filter}}}
		accumulate := any(1) // pass -1: the count
		if pass >= 0 {
			accumulate = "$" + t.Sum[pass]
		}
		pipeline = append(pipeline, bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: key},
			{Key: "v", Value: bson.D{{Key: "$sum", Value: accumulate}}}}}})
		err := s.aggregate(ctx, coll, pipeline, func(row bson.M) error {
			k, _ := row["_id"].(bson.M)
			values := make([]any, len(t.By))
			for i := range t.By {
				var err error
				if values[i], err = aggregatedValue(k[fmt.Sprintf("k%d", i)]); err != nil {
					return fmt.Errorf("group by %s: %w", t.By[i], err)
				}
			}
			v, err := aggregatedInt(row["v"])
			if err != nil {
				return err
			}
			id := fmt.Sprintf("%#v", values)
			if pass < 0 {
				at[id] = len(out)
				out = append(out, models.TallyGroup{Values: values, Count: v, Sums: make([]int64, len(t.Sum))})
			} else if i, ok := at[id]; ok {
				out[i].Sums[pass] = v
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// aggregate runs pipeline on coll and calls each with every result.
func (s *Store) aggregate(ctx context.Context, coll string, pipeline bson.A, each func(bson.M) error) error {
	cur, err := s.coll(coll).Aggregate(ctx, pipeline)
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var row bson.M
		if err := cur.Decode(&row); err != nil {
			return err
		}
		if err := each(row); err != nil {
			return err
		}
	}
	return cur.Err()
}

// aggregatedValue is the Go value of a grouped field as MongoDB returns it.
func aggregatedValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, float64, int64:
		return x, nil
	case int32:
		return int64(x), nil
	case primitive.DateTime:
		return x.Time().UTC(), nil
	}
	return nil, fmt.Errorf("a %T", v)
}

func aggregatedInt(v any) (int64, error) {
	switch x := v.(type) {
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		return int64(x), nil
	case nil:
		return 0, nil
	}
	return 0, fmt.Errorf("a %T for a count or sum", v)
}

// mergeGroups puts the times of t.Days on their day and adds up the groups
// that then hold the same values (MongoDB groups by the exact time).
func mergeGroups(groups []models.TallyGroup, t models.Tally) []models.TallyGroup {
	if len(t.Days) == 0 {
		return groups
	}
	at := map[string]int{}
	out := groups[:0]
	for _, g := range groups {
		for i, f := range t.By {
			if tm, ok := g.Values[i].(time.Time); ok && slices.Contains(t.Days, f) {
				g.Values[i] = tm.UTC().Truncate(24 * time.Hour)
			}
		}
		key := fmt.Sprintf("%#v", g.Values)
		if j, seen := at[key]; seen {
			out[j].Count += g.Count
			for i := range g.Sums {
				out[j].Sums[i] += g.Sums[i]
			}
			continue
		}
		at[key] = len(out)
		out = append(out, g)
	}
	return out
}

// ExplainTally returns the embedded engine's plan for Tally ("" on
// MongoDB, which plans for itself), for tests that check a report reads
// its index.
func (s *Store) ExplainTally(ctx context.Context, coll string, t models.Tally) (string, error) {
	direct, ok := s.tables.(interface {
		ExplainTally(ctx context.Context, coll string, fields embedded.Fields, t models.Tally, index string) (string, error)
	})
	if !ok {
		return "", nil
	}
	return direct.ExplainTally(ctx, coll, queryFields[coll], t, TallyIndex(coll, t))
}
