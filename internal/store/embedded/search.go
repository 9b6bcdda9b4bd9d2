package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/models"
)

// A substring search of a SearchTerms field (a customer's search keys)
// answers each query one of two ways, chosen per query (as on SQLite):
//
//   - few candidates (a number, an e-mail, a rare name): the trigram index
//     names them, their entries in the collection's span_all index are
//     tested for what the actor may see and the position, sorted by id, and
//     only the page's records are read;
//   - many (a common surname, "ltd", "2026"): the list the actor sees is
//     walked in id order from span_all's entries, each tested on the
//     search table's text of the record (a lookup by number, no record
//     read), until the page is full.
//
// Reading every candidate costs in proportion to how many there are, the
// walk in proportion to how rare they are, so neither serves both: the
// first took 158 ms for a Chinese fragment at 100,000 customers, the second
// 70 ms for a number at 20,000 (it then read 2,000 records). The choice
// counts the actor's candidates, from index entries alone and up to the
// length of a walk: more than a walk examines and the walk fills its page
// sooner than the candidates are read. FTS5 cannot find a needle shorter
// than a trigram from its index (it would read its whole table to count),
// so one or two characters, which most records hold, walk first. A walk
// that fills its page, or reaches the end of the list (a rep's few
// hundred customers), is the answer; one that does neither (a rare short
// needle, or candidates the actor mostly may not see) ends with the
// candidates.
//
// PostgreSQL makes the same choice with its own costs (see candidatesRead):
// pg_trgm names the candidates, and the walk reads records in the list's
// index order, its planner kept from the plans its estimates preferred.

// termsBranch is how a search of a SearchTerms field was answered.
type termsBranch string

const (
	// byCandidates read the ids the trigram index names.
	byCandidates termsBranch = "candidates"
	// byWalk walked the list in id order and filled the page, or read
	// the whole list.
	byWalk termsBranch = "walk"
	// byWalkThenCandidates walked without filling the page or reaching
	// the end of the list, then read the candidates.
	byWalkThenCandidates termsBranch = "walk, then candidates"
)

// termsSearch is a query's substring search of a SearchTerms field.
type termsSearch struct {
	field, needle string
}

// termsSearchOf returns q's search of a SearchTerms field when it is the
// only condition q tests on records (the rest are on span_all's entries,
// which pageIndex checked when it named the index).
func termsSearchOf(fields Fields, q models.Query) (termsSearch, bool) {
	var found []models.Cond
	for _, c := range q.Conds {
		if Walked(fields, c) {
			found = append(found, c)
		}
	}
	if len(found) != 1 || found[0].Op != models.OpContains || fields[found[0].Field] != SearchTerms {
		return termsSearch{}, false
	}
	needle, ok := found[0].Value.(string)
	// The search table holds a record's keys joined by newlines: a needle
	// without one is in that text exactly when it is in one of the keys.
	if !ok || needle == "" || strings.Contains(needle, "\n") {
		return termsSearch{}, false
	}
	return termsSearch{field: found[0].Field, needle: strings.ToLower(needle)}, true
}

// trigrams tells a needle the trigram index finds: three characters or
// more, none of them special to GLOB on SQLite (FTS5 then reads its whole
// table), none that JSON text escapes on PostgreSQL (see searchCond).
func (d dialect) trigrams(s termsSearch) bool {
	if utf8.RuneCountInString(s.needle) < 3 {
		return false
	}
	if d.sqlite {
		return !strings.ContainsAny(s.needle, "*?[")
	}
	return !strings.ContainsAny(s.needle, `"\`) && !hasControl(s.needle)
}

// grammed tells a needle the grams side table finds on SQLite (see
// sidetables.go): one or two characters, one of them past ASCII.
func (d dialect) grammed(s termsSearch) bool {
	return d.sqlite && gramNeedle(s.needle)
}

func gramNeedle(needle string) bool {
	return shortNeedle(needle) && len(needle) > utf8.RuneCountInString(needle)
}

// counted tells a needle whose candidates an index names, so that they can
// be counted before choosing.
func (d dialect) counted(s termsSearch) bool { return d.trigrams(s) || d.grammed(s) }

// findTerms answers q, a search of a SearchTerms field, with the branch
// chooseTerms picks (see above); ok is false, with nothing read, when q is
// not such a search.
func (t *Tables) findTerms(ctx context.Context, coll string, fields Fields, q models.Query, index string, each func(bson.Raw) error) (bool, error) {
	s, ok := termsSearchOf(fields, q)
	if !ok {
		return false, nil
	}
	branch, err := t.chooseTerms(ctx, coll, fields, q, s, index)
	if errors.Is(err, ErrUntranslatable) {
		return false, nil // the statements without a choice may still translate
	}
	if err != nil {
		return true, err
	}
	if branch == byWalk {
		page, complete, err := t.walkTerms(ctx, coll, fields, q, s, index)
		if errors.Is(err, ErrUntranslatable) {
			return false, nil
		}
		if err != nil {
			return true, err
		}
		if complete {
			for _, doc := range page {
				if err := each(doc); err != nil {
					return true, err
				}
			}
			return true, nil
		}
	}
	stmt, args, err := t.withFunctions().termsCandidatesOf(fields, q, s, index, false)
	if err != nil {
		return true, err
	}
	return true, t.eachKeeping(ctx, coll, stmt, args, nil, shownCut(q), each)
}

// walkTerms walks the list for q's search s (see termsWalkOf) and says
// whether the page it found is the answer: when it is full (every record
// before the last one walked was tested) or the walk reached the end of
// the list (a rep's few hundred customers: every record was tested).
func (t *Tables) walkTerms(ctx context.Context, coll string, fields Fields, q models.Query, s termsSearch, index string) ([]bson.Raw, bool, error) {
	if !t.dialect.sqlite {
		return t.walkRecords(ctx, coll, fields, q, index)
	}
	stmt, args, err := t.dialect.termsWalkOf(fields, q, s, index)
	if err != nil {
		return nil, false, err
	}
	page, err := t.pagePlanned(ctx, coll, stmt, args, walkPlanner(), shownCut(q))
	if err != nil || len(page) == q.Limit {
		return page, err == nil, err
	}
	// A short page: did the walk read the whole list? Its entries alone
	// say (on SQLite; PostgreSQL reads the records' deletion mark too).
	ids, args, most, err := t.dialect.walkedIDs(fields, q, index)
	if err != nil {
		return nil, false, err
	}
	stmt = "SELECT count(*) FROM (" + ids + ") AS walked"
	var walked int
	err = t.scanPlanned(ctx, coll, stmt, args, walkPlanner(), &walked)
	if err != nil {
		return nil, false, fmt.Errorf("measure the walk of a search of %s: %w", coll, err)
	}
	return page, walked < most, nil
}

// walkedIDs is the statement of the ids a walk of q's list examines, in
// list order, and how many it examines at most.
func (d dialect) walkedIDs(fields Fields, q models.Query, index string) (string, []any, int, error) {
	rest := withoutWalked(fields, q)
	rest.Limit = q.Limit * walkedPerRecord
	ids, args, err := d.pageIDs(fields, rest, index, nil)
	return ids, args, rest.Limit, err
}

// pagePlanned collects the documents stmt reads (see eachKeeping).
func (t *Tables) pagePlanned(ctx context.Context, coll, stmt string, args []any, off []string, keep map[string]string) ([]bson.Raw, error) {
	var page []bson.Raw
	err := t.eachKeeping(ctx, coll, stmt, args, off, keep, func(doc bson.Raw) error {
		page = append(page, slices.Clone(doc))
		return nil
	})
	return page, err
}

// walkRecords is walkTerms on PostgreSQL: the walk's last id and length
// are read from the list's index first, then the records up to that id
// are tested in order, as the index names them, until the page is full.
// (A bound in the statement itself, as a subquery, made a rep's short list
// be read a third time to learn whether the walk had reached its end.)
func (t *Tables) walkRecords(ctx context.Context, coll string, fields Fields, q models.Query, index string) ([]bson.Raw, bool, error) {
	ids, args, most, err := t.dialect.walkedIDs(fields, q, index)
	if err != nil {
		return nil, false, err
	}
	end := "max"
	if q.Desc {
		end = "min"
	}
	stmt := fmt.Sprintf("SELECT %s(w.id), count(*) FROM (%s) AS w", end, ids)
	var bound sql.NullString
	var walked int
	err = t.scanPlanned(ctx, coll, stmt, args, walkPlanner(), &bound, &walked)
	if err != nil {
		return nil, false, fmt.Errorf("find the end of the walk of a search of %s: %w", coll, err)
	}
	if walked == 0 {
		return nil, true, nil // nothing left to list
	}
	stmt, args, err = t.dialect.termsWalkOfRecords(fields, q, bound.String)
	if err != nil {
		return nil, false, err
	}
	page, err := t.pagePlanned(ctx, coll, stmt, args, walkPlanner(), shownCut(q))
	return page, err == nil && (len(page) == q.Limit || walked < most), err
}

// chooseTerms picks how to answer q's search s: by its candidates when the
// trigram index names no more of them, visible to the actor and after q's
// position, than a walk would examine; otherwise by a walk.
func (t *Tables) chooseTerms(ctx context.Context, coll string, fields Fields, q models.Query, s termsSearch, index string) (termsBranch, error) {
	if !t.dialect.counted(s) {
		return byWalk, nil
	}
	most := t.dialect.candidatesRead(q, s)
	stmt, args, err := t.dialect.termsCountOf(fields, q, s, index)
	if err != nil {
		return "", err
	}
	// Counting stops one past the most worth reading.
	stmt = fmt.Sprintf("SELECT count(*) FROM (%s LIMIT %d) AS counted", stmt, most+1)
	var n int
	err = t.scanPlanned(ctx, coll, stmt, args, countPlanner(), &n)
	if err != nil {
		return "", fmt.Errorf("count the candidates of a search of %s: %w", coll, err)
	}
	if n > most {
		return byWalk, nil
	}
	return byCandidates, nil
}

// candidatesRead is the most candidates of a search worth reading rather
// than walking the list. On SQLite both read index entries, a walk's
// about as costly as a candidate's, so the most is the walk's length. On
// PostgreSQL both read records, a candidate through the trigram index
// (40 µs each at 20,000 customers: a random read of a whole document)
// several times a record walked in order (8 µs): 10 per row of the page
// (510, 20 ms), past which a needle is common enough (1 customer in 40 at
// 20,000, in 200 at 100,000) to fill a walk's page sooner. A short
// needle's candidates on SQLite, from the grams, cost about four times a
// walked entry (李, in one customer of 20 among 20,000: 1,000 candidates
// read in 28 ms, the walk through as many entries 7 ms,
// BenchmarkSearchShortChineseName), so they get a quarter of its length.
func (d dialect) candidatesRead(q models.Query, s termsSearch) int {
	switch {
	case d.grammed(s):
		return q.Limit * walkedPerRecord / 4
	case d.sqlite:
		return q.Limit * walkedPerRecord
	}
	return q.Limit * 10
}

// termsCountOf is the statement of the candidates chooseTerms counts: those
// the actor may see after q's position (termsCandidatesOf), or, for a short
// needle on SQLite, the tenant's entries in the grams alone, a range of its
// key: seeking every candidate's entry to test it made counting 李 (1,000
// of 20,000) cost more than the walk it chose.
func (d dialect) termsCountOf(fields Fields, q models.Query, s termsSearch, index string) (string, []any, error) {
	if !d.grammed(s) {
		return d.termsCandidatesOf(fields, q, s, index, true)
	}
	// %.0[1]s: the statements are formats of the table's name, which this
	// one does not read (it prints nothing).
	return "SELECT 1 FROM {grams} WHERE tenant = ? AND field = '" + s.field + "' AND gram = ?%.0[1]s", []any{q.Tenant, s.needle}, nil
}

// countPlanner and walkPlanner are the plans PostgreSQL's planner may not
// choose (see eachPlanned) for the count of a search's candidates, which
// must read the trigram index (a scan of the table, stopping at the
// count's limit, reads the whole table for a rarer needle), and for the
// walk, which must read the list's index in order (its estimate of how
// common a needle is made it read and sort every candidate, or the
// table).
// scanPlanned reads the one row of stmt (with %s for the table, and the
// side tables' tokens) into dest, with the plans off turned off (see planned).
func (t *Tables) scanPlanned(ctx context.Context, coll, stmt string, args []any, off []string, dest ...any) error {
	return t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return nil
		}
		return t.planned(ctx, off, func(db querier) error {
			return db.QueryRowContext(ctx, fmt.Sprintf(indexToken(sideTokens(stmt, table), table), t.dialect.qualify(table)), args...).Scan(dest...)
		})
	})
}

func countPlanner() []string { return []string{"seqscan", "indexscan"} }

func walkPlanner() []string { return []string{"seqscan", "bitmapscan", "sort"} }

// termsCandidatesOf is the statement of q's page read from the candidates
// of its search s: the ids the trigram index names for the tenant, each
// looked up in index (span_all) to test what the actor may see, the
// position and deletion on the entry, then sorted, and the page's records
// read by id. With count set it is the ids alone, unsorted, for counting.
func (d dialect) termsCandidatesOf(fields Fields, q models.Query, s termsSearch, index string, count bool) (string, []any, error) {
	if !d.sqlite {
		// pg_trgm's index names the candidates; each is a record.
		if !count {
			return d.selectOf(fields, q, Hints{})
		}
		b := &sqlBuilder{d: d, fields: fields, tenant: q.Tenant}
		if err := b.where(q); err != nil {
			return "", nil, err
		}
		if _, err := b.order(q); err != nil {
			return "", nil, err
		}
		return "SELECT 1 FROM %[1]s WHERE " + strings.Join(b.conds, " AND "), b.args, nil
	}
	rest := withoutWalked(fields, q)
	b := &sqlBuilder{d: d, fields: fields, tenant: q.Tenant}
	// The candidates' join is fixed (CROSS JOIN): the search table's
	// entries first, each record's entry then sought by tenant and id.
	from := fmt.Sprintf("(%s) AS c CROSS JOIN %%[1]s INDEXED BY {index:%s}", b.candidateIDs(s.field, s.needle), index)
	// +: without affinity, as the index's expression, so the id seeks it.
	ids, args, err := d.entryIDs(fields, rest, entries{from: from, index: index, match: "+c.id", unordered: count}, b.args)
	if err != nil || count {
		return ids, args, err
	}
	return d.recordsOf(fields, q, ids, args)
}

// termsWalkOf is the statement of the walk of q's search s: the first
// Limit×walkedPerRecord entries of index (span_all) in q's order that the
// rest of q selects, each tested on the search table's text of its record
// (found by number, no record read), the first Limit of those that hold
// the needle, and then their records.
func (d dialect) termsWalkOf(fields Fields, q models.Query, s termsSearch, index string) (string, []any, error) {
	rest := withoutWalked(fields, q)
	rest.Limit = q.Limit * walkedPerRecord
	if !d.sqlite {
		// The shape of the statement walkRecords runs.
		return d.termsWalkOfRecords(fields, q, unbounded(q))
	}
	walk, args, err := d.pageIDs(fields, rest, index, nil)
	if err != nil {
		return "", nil, err
	}
	b := &sqlBuilder{d: d, fields: fields, tenant: q.Tenant, args: args}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	ids := fmt.Sprintf("SELECT w.id FROM (%s) AS w CROSS JOIN {rows} AS r CROSS JOIN {fts:%s} AS f WHERE r.id = w.id AND f.rowid = r.n AND instr(f.items, %s) > 0 ORDER BY w.id %s LIMIT %s",
		walk, s.field, b.arg(s.needle), dir, b.arg(q.Limit))
	return d.recordsOf(fields, q, ids, b.args)
}

// termsWalkOfRecords is the walk on PostgreSQL, where the searched text is
// in the record alone: q's page among the records, in q's order, up to
// bound, the last id of the walk (see walkRecords), testing each record as
// the list's index names it.
func (d dialect) termsWalkOfRecords(fields Fields, q models.Query, bound string) (string, []any, error) {
	b := &sqlBuilder{d: d, fields: fields, tenant: q.Tenant}
	if err := b.where(q); err != nil {
		return "", nil, err
	}
	order, err := b.order(q)
	if err != nil {
		return "", nil, err
	}
	cmp := "<="
	if q.Desc {
		cmp = ">="
	}
	b.conds = append(b.conds, d.value("_id", Text)+" "+cmp+" "+b.arg(bound))
	return fmt.Sprintf("SELECT %s FROM %%[1]s WHERE %s ORDER BY %s LIMIT %s",
		d.document, strings.Join(b.conds, " AND "), order, b.arg(q.Limit)), b.args, nil
}

// unbounded is a bound of termsWalkOfRecords that passes every id in q's
// order.
func unbounded(q models.Query) string {
	if q.Desc {
		return ""
	}
	return "\U0010FFFF"
}

// withoutWalked is q without the conditions tested on records (see Walked).
func withoutWalked(fields Fields, q models.Query) models.Query {
	rest := q
	rest.Conds = slices.DeleteFunc(slices.Clone(q.Conds), func(c models.Cond) bool { return Walked(fields, c) })
	return rest
}

// recordsOf is the statement of the records of the ids a statement selects
// (a page's, already tested and in q's order), read by tenant and id; its
// parameters continue args.
func (d dialect) recordsOf(fields Fields, q models.Query, ids string, args []any) (string, []any, error) {
	b := &sqlBuilder{d: d, fields: fields, tenant: q.Tenant, args: args}
	b.conds = append(b.conds, d.tenant+" = "+b.arg(q.Tenant), b.drive(ids))
	order, err := b.order(q)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("SELECT %s FROM (%s) AS m CROSS JOIN %%[1]s WHERE %s ORDER BY %s LIMIT %s",
		d.document, b.driver, strings.Join(b.conds, " AND "), order, b.arg(q.Limit)), b.args, nil
}

// ExplainSearch returns, for a search of a SearchTerms field on SQLite,
// the branch Find takes for q (see findTerms) and the plans of the
// statements that branch runs: the count that chose it, then the page's.
func (t *Tables) ExplainSearch(ctx context.Context, coll string, fields Fields, q models.Query, index string) (string, []string, error) {
	s, ok := termsSearchOf(fields, q)
	if !ok || index == "" || q.Limit <= 0 {
		return "", nil, fmt.Errorf("%w: not a search of search terms read from %q", ErrUntranslatable, index)
	}
	branch, err := t.chooseTerms(ctx, coll, fields, q, s, index)
	if err != nil {
		return "", nil, err
	}
	type step struct {
		off  []string
		stmt func() (string, []any, error)
	}
	var steps []step
	if t.dialect.counted(s) {
		steps = append(steps, step{countPlanner(), func() (string, []any, error) { return t.dialect.termsCountOf(fields, q, s, index) }})
	}
	if branch == byWalk {
		steps = append(steps, step{walkPlanner(), func() (string, []any, error) { return t.dialect.termsWalkOf(fields, q, s, index) }})
		// Find reads the candidates after a walk that neither filled the
		// page nor read the whole list.
		_, complete, err := t.walkTerms(ctx, coll, fields, q, s, index)
		if err != nil {
			return "", nil, err
		}
		if !complete {
			branch = byWalkThenCandidates
		}
	}
	if branch != byWalk {
		steps = append(steps, step{nil, func() (string, []any, error) { return t.withFunctions().termsCandidatesOf(fields, q, s, index, false) }})
	}
	table, err := t.table(ctx, coll)
	if err != nil {
		return "", nil, err
	}
	var plans []string
	for _, st := range steps {
		stmt, args, err := st.stmt()
		if err != nil {
			return "", nil, err
		}
		plan, err := t.explainPlanned(ctx, coll, indexToken(stmt, table), st.off, args)
		if err != nil {
			return "", nil, err
		}
		plans = append(plans, plan)
	}
	return string(branch), plans, nil
}
