package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// Tallies: a models.Tally answered by one GROUP BY statement.
//
// On SQLite the statement names the index it reads (INDEXED BY), one that
// holds every field the tally uses, and is shaped so that SQLite reads that
// index's entries and no document (see tallyOf): 100,000 customers grouped
// by six fields take about 0.1 s, against seconds for a pass over the
// documents. PostgreSQL reads index entries alone only from indexes on
// columns, not on expressions, and unpacking each document's jsonb cost
// about 10 µs a record (3 s for 300,000 interactions): there a tally
// reads the side table of tallies instead (see IndexTallies), whose
// columns are the tally indexes' fields, through its copy of the index.

// dayMillis is a day in the epoch milliseconds dates are stored as.
const dayMillis = 24 * 60 * 60 * 1000

// Tally returns the groups of tally over coll, in no particular order. index
// names the index of coll (one of IndexQueries') that holds every field the
// tally uses; "" lets the database choose.
func (t *Tables) Tally(ctx context.Context, coll string, fields Fields, tally models.Tally, index string) ([]models.TallyGroup, error) {
	out, err := t.tally(ctx, coll, fields, tally, index)
	if err != nil && index != "" && (strings.Contains(err.Error(), "no such index") || !t.dialect.sqlite && isMissingTable(err)) {
		// A table made after start-up has not got the index (on
		// PostgreSQL the side table) yet: the answer is the same, read
		// the long way.
		out, err = t.tally(ctx, coll, fields, tally, "")
	}
	if err != nil {
		return nil, fmt.Errorf("tally %s of tenant %s: %w", coll, tally.Tenant, err)
	}
	return out, nil
}

func (t *Tables) tally(ctx context.Context, coll string, fields Fields, tally models.Tally, index string) ([]models.TallyGroup, error) {
	stmt, args, kinds, err := t.dialect.tallyOf(fields, tally, index)
	if err != nil {
		return nil, err
	}
	var out []models.TallyGroup
	err = t.retry(ctx, coll, func(table string) error {
		out = out[:0]
		if table == "" {
			return nil
		}
		rows, err := t.db.QueryContext(ctx, fmt.Sprintf(indexToken(sideTokens(stmt, table), table), t.tallied(table, index)), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			g, err := scanGroup(rows, kinds, tally)
			if err != nil {
				return err
			}
			if g.Count > 0 {
				out = append(out, g)
			}
		}
		return rows.Err()
	})
	return out, err
}

// ExplainTally returns the database's plan for Tally, so that tests can
// check that a tally reads an index (and on SQLite, nothing else).
func (t *Tables) ExplainTally(ctx context.Context, coll string, fields Fields, tally models.Tally, index string) (string, error) {
	stmt, args, _, err := t.dialect.tallyOf(fields, tally, index)
	if err != nil {
		return "", err
	}
	if !t.dialect.sqlite && index != "" {
		table, err := t.table(ctx, coll)
		if err != nil {
			return "", err
		}
		// explain formats the statement with the collection's table: a
		// comment takes it.
		stmt = strings.ReplaceAll(stmt, "%[1]s", t.tallied(table, index)) + " /* %[1]s */"
	}
	return t.explainNamed(ctx, coll, stmt, args)
}

// tallied is the table a tally reads: on PostgreSQL with an index, the
// side table of tallies of table; otherwise table.
func (t *Tables) tallied(table, index string) string {
	if !t.dialect.sqlite && index != "" {
		return t.dialect.qualify(table + tallySuffix)
	}
	return t.dialect.qualify(table)
}

// indexToken names the index {index:name} stands for: IndexQueries' name
// of it on table.
func indexToken(stmt, table string) string {
	for {
		i := strings.Index(stmt, "{index:")
		if i < 0 {
			return stmt
		}
		j := strings.IndexByte(stmt[i:], '}')
		stmt = stmt[:i] + quoteIdent(table+"_fieldcrm_q_"+stmt[i+7:i+j]) + stmt[i+j+1:]
	}
}

// tallyOf is the statement of a tally (with %s for the table, {index:…}
// for its index), its parameters, and the kinds of its By fields. On
// PostgreSQL with an index, the table is the side table of tallies (see
// Tables.tallied), whose columns hold the index's fields.
func (d dialect) tallyOf(fields Fields, tally models.Tally, index string) (string, []any, []Kind, error) {
	b := &sqlBuilder{d: d, fields: fields, tenant: tally.Tenant, scopeUnindexed: true}
	switch {
	case !d.sqlite && index != "":
		b.d.columns, b.d.tenant = true, quoteIdent("tenant_id")
	case !d.sqlite:
		// Values and conditions come from one unpacking of each document
		// (a record of its top-level fields); the tenant and the period
		// still seek the index.
		seek := d
		b.seek, b.d.record = &seek, "x"
	}
	if err := b.where(tally.Query); err != nil {
		return "", nil, nil, err
	}
	// The inner statement reads each record's values, the outer groups
	// them. Left as one statement SQLite would carry each document into
	// its sort for the grouping, reading every record; the inner one's
	// LIMIT keeps it a statement of its own (SQLite does not merge a
	// subquery with a LIMIT into an aggregate), which reads index entries
	// only.
	var inner, outer, groupBy []string
	kinds := make([]Kind, len(tally.By))
	for i, f := range tally.By {
		k, err := b.kind(f)
		if err != nil {
			return "", nil, nil, err
		}
		if k != Text && k != SearchText && k != Time && k != Number {
			return "", nil, nil, fmt.Errorf("%w: group by %s", ErrUntranslatable, f)
		}
		e := b.d.value(f, k)
		if slices.Contains(tally.Days, f) {
			if k != Time {
				return "", nil, nil, fmt.Errorf("%w: days of %s, not a time", ErrUntranslatable, f)
			}
			e = b.d.day(e)
		}
		if !d.sqlite && k == Number {
			e = "(" + e + ")::float8"
		}
		kinds[i] = k
		inner = append(inner, fmt.Sprintf("%s AS k%d", e, i))
		outer = append(outer, fmt.Sprintf("k%d", i))
		groupBy = append(groupBy, fmt.Sprint(i+1))
	}
	outer = append(outer, "COUNT(*)")
	for i, f := range tally.Sum {
		k, err := b.kind(f)
		if err != nil {
			return "", nil, nil, err
		}
		if k != Number {
			return "", nil, nil, fmt.Errorf("%w: sum of %s, not a number", ErrUntranslatable, f)
		}
		inner = append(inner, fmt.Sprintf("%s AS s%d", b.d.value(f, k), i))
		if d.sqlite {
			outer = append(outer, fmt.Sprintf("CAST(COALESCE(SUM(s%d), 0) AS INTEGER)", i))
		} else {
			outer = append(outer, fmt.Sprintf("COALESCE(SUM(s%d), 0)::bigint", i))
		}
	}
	if len(inner) == 0 {
		inner = append(inner, "1 AS one")
	}
	from := "%[1]s"
	switch {
	case b.driver != "":
		from = "(" + b.driver + ") AS m CROSS JOIN %[1]s"
	case index != "" && d.sqlite:
		from += " INDEXED BY {index:" + index + "}"
	case !d.sqlite && !b.d.columns:
		from += " CROSS JOIN LATERAL jsonb_to_record(_jsonb) AS x(" + recordColumns(tally) + ")"
	}
	unmerged := "LIMIT -1"
	if !d.sqlite {
		unmerged = "OFFSET 0"
	}
	stmt := fmt.Sprintf("SELECT %s FROM (SELECT %s FROM %s WHERE %s %s) AS r", strings.Join(outer, ", "),
		strings.Join(inner, ", "), from, strings.Join(b.conds, " AND "), unmerged)
	if len(groupBy) > 0 {
		stmt += " GROUP BY " + strings.Join(groupBy, ", ")
	}
	return stmt, b.args, kinds, nil
}

// recordColumns declares, as jsonb, the top-level fields a tally reads.
func recordColumns(tally models.Tally) string {
	fields := append(append([]string{"deleted_at", "owner_id", "team_id", "assignee_id"}, tally.By...), tally.Sum...)
	for _, c := range tally.Conds {
		fields = append(fields, c.Field)
	}
	var cols []string
	for _, f := range fields {
		top, _, _ := strings.Cut(f, ".")
		if col := quoteIdent(top) + " jsonb"; !slices.Contains(cols, col) {
			cols = append(cols, col)
		}
	}
	return strings.Join(cols, ", ")
}

// day is the day (since the epoch, UTC) of a date expression e, rounded down
// also before 1970.
func (d dialect) day(e string) string {
	if d.sqlite {
		// %%%% survives this Sprintf as the %% of a statement that is
		// formatted again with its table.
		return fmt.Sprintf("(%[1]s / %[2]d - (%[1]s < 0 AND %[1]s %%%% %[2]d <> 0))", e, dayMillis)
	}
	// Whole numbers: floor() of a numeric division took a third of a
	// tally of 300,000 interactions by day.
	return fmt.Sprintf("(%[1]s / %[2]d - (%[1]s %%%% %[2]d < 0)::int)", e, dayMillis)
}

// scanGroup reads one row of a tally into its group, turning each value
// into the Go type of its field's kind.
func scanGroup(rows *sql.Rows, kinds []Kind, tally models.Tally) (models.TallyGroup, error) {
	raw := make([]any, len(kinds))
	g := models.TallyGroup{Values: make([]any, len(kinds)), Sums: make([]int64, len(tally.Sum))}
	dest := make([]any, 0, len(kinds)+1+len(tally.Sum))
	for i := range raw {
		dest = append(dest, &raw[i])
	}
	dest = append(dest, &g.Count)
	for i := range g.Sums {
		dest = append(dest, &g.Sums[i])
	}
	if err := rows.Scan(dest...); err != nil {
		return g, err
	}
	for i, v := range raw {
		f := tally.By[i]
		var err error
		if g.Values[i], err = groupValue(v, kinds[i], slices.Contains(tally.Days, f)); err != nil {
			return g, fmt.Errorf("group by %s: %w", f, err)
		}
	}
	return g, nil
}

// groupValue is the Go value of a grouped field as the database returned it.
func groupValue(v any, k Kind, day bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch k {
	case Text, SearchText:
		switch s := v.(type) {
		case string:
			return s, nil
		case []byte:
			return string(s), nil
		}
	case Time:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case float64:
			n = int64(x)
		default:
			return nil, fmt.Errorf("a %T for a date", v)
		}
		if day {
			n *= dayMillis
		}
		return time.UnixMilli(n).UTC(), nil
	case Number:
		switch v.(type) {
		case int64, float64:
			return v, nil
		}
	}
	return nil, fmt.Errorf("a %T for a field of kind %d", v, k)
}
