package embedded

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// Moves: the funnel report counts the items of an array (a customer's
// stage history), which no expression index holds on either engine. A side
// table, <table>_fieldcrm_moves, holds one row per item of every live
// record, kept by triggers in the writer's own transaction (FerretDB's
// writes and ours alike), on SQLite and on PostgreSQL:
//
//	tenant, id, n       the record and the item's position in the array
//	owner_id, team_id   what the report's visibility tests
//	stage, at           the state moved into and when (epoch milliseconds)
//	ended               when the stay ended: the next item's time, NULL for
//	                    the current state
//	rank, later         the stage's position in the funnel (0: not in it) and
//	                    the highest position of the items after it, so that
//	                    "advanced later" is later > rank
//
// A soft-deleted record has no rows (the report counts live records only),
// and gets them back when restored. Two indexes, (tenant, at, …) and
// (tenant, ended, …), hold every column the report reads after the period,
// so each half of the report is a GROUP BY over one range of index entries.
// An update that leaves the array, the owner, the team and the deletion
// alone (most do) touches nothing here; one that changes them rewrites the
// record's rows, a few per customer.

// Moves describes the array of moves a side table holds.
type Moves struct {
	// Coll is the collection, Array the field of its records holding the
	// moves, To and At the fields of an item: the state moved into and when.
	Coll, Array, To, At string
	// Order are the states of the funnel, in order.
	Order []string
}

// sideDDL are the statements of a side table kept by triggers: the table
// and its indexes, the triggers (and on PostgreSQL their function) and the
// fill from the records already there; name is the triggers' prefix, which
// carries a digest of the statements, so that a change to them (a stage
// added to the funnel, a field to a tally) makes start-up build the table
// again.
type sideDDL struct {
	create, triggers, fill []string
	name                   string
}

// named sets ddl's name: the prefix of side tables of kind what, then a
// digest of its statements.
func (ddl sideDDL) named(what string) sideDDL {
	sum := sha256.New()
	for _, s := range append(append(append([]string{}, ddl.create...), ddl.triggers...), ddl.fill...) {
		sum.Write([]byte(s))
	}
	ddl.name = sidePrefix(what) + hex.EncodeToString(sum.Sum(nil))[:10]
	return ddl
}

// sidePrefix starts the names of the triggers of side tables of kind what
// (on SQLite after the table's name, unique in the database; on PostgreSQL
// names of triggers are the table's own).
func sidePrefix(what string) string { return "fieldcrm_" + what + "_" }

// movesDDL returns the statements of m's side table on table.
func (t *Tables) movesDDL(table string, m Moves) sideDDL {
	d := t.dialect
	sideTable := side(table, "moves")
	if !d.sqlite {
		sideTable = d.qualify(table + "_fieldcrm_moves")
	}
	rank := func(item string) string {
		var b strings.Builder
		b.WriteString("CASE " + item + " ")
		for i, s := range m.Order {
			fmt.Fprintf(&b, "WHEN '%s' THEN %d ", strings.ReplaceAll(s, "'", "''"), i+1)
		}
		b.WriteString("ELSE 0 END")
		return b.String()
	}
	columns := "tenant, id, n, owner_id, team_id, stage, at, ended, rank, later"
	// rows is the SELECT of the rows of the record row (NEW, or d for the
	// fill), one per item of its array that is an object; ended is the
	// next item's time, later the best rank among the items after it.
	var rows func(row, from string) string
	fillFrom := d.qualify(table) + " AS d, "
	var create []string
	if d.sqlite {
		create = []string{fmt.Sprintf(`CREATE TABLE %s (tenant TEXT NOT NULL, id TEXT NOT NULL, n INTEGER NOT NULL, owner_id TEXT, team_id TEXT,
			stage TEXT, at INTEGER, ended INTEGER, rank INTEGER NOT NULL, later INTEGER NOT NULL, PRIMARY KEY (tenant, id, n)) WITHOUT ROWID`, sideTable)}
		// json_each(doc->'$.array') and not json_each(doc, '$.array'): the
		// table function parses the text it is given each time, where ->
		// goes through the statement's cache of parsed documents, so the
		// whole record is parsed once per trigger and json_each reads the
		// array's text alone.
		rows = func(row, from string) string {
			doc := row + "._ferretdb_sjson"
			item := func(alias, f string) string { return alias + ".value->>'$." + f + "'" }
			return fmt.Sprintf(`SELECT %[1]s->>'$.tenant_id', %[1]s->>'$._id', h.key, %[1]s->>'$.owner_id', %[1]s->>'$.team_id', %[2]s, %[3]s,
				%[1]s->>('$.%[4]s[' || (h.key + 1) || '].%[5]s'), %[6]s,
				(SELECT coalesce(max(%[7]s), 0) FROM json_each(%[1]s->'$.%[4]s') AS l WHERE l.key > h.key)
				FROM %[8]sjson_each(%[1]s->'$.%[4]s') AS h WHERE %[1]s->>'$.deleted_at' IS NULL AND h.type = 'object'`,
				doc, item("h", m.To), item("h", m.At), m.Array, m.At, rank(item("h", m.To)), rank(item("l", m.To)), from)
		}
	} else {
		fillFrom = d.qualify(table) + " AS d CROSS JOIN LATERAL "
		create = []string{fmt.Sprintf(`CREATE TABLE %s (tenant text NOT NULL, id text NOT NULL, n bigint NOT NULL, owner_id text, team_id text,
			stage text, at bigint, ended bigint, rank int NOT NULL, later int NOT NULL, PRIMARY KEY (tenant, id, n))`, sideTable)}
		rows = func(row, from string) string {
			doc := row + "._jsonb"
			// A null array (a Go nil slice) is no array: jsonb_array_elements
			// would fail the write.
			array := fmt.Sprintf("(CASE WHEN jsonb_typeof(%[1]s->'%[2]s') = 'array' THEN %[1]s->'%[2]s' END)", doc, m.Array)
			return fmt.Sprintf(`SELECT %[1]s->>'tenant_id', %[1]s->>'_id', h.n, %[1]s->>'owner_id', %[1]s->>'team_id', h.value->>'%[3]s', (h.value->>'%[4]s')::bigint,
				((%[2]s->(h.n::int))->>'%[4]s')::bigint, %[5]s,
				(SELECT coalesce(max(%[6]s), 0) FROM jsonb_array_elements(%[2]s) WITH ORDINALITY AS l(value, n) WHERE l.n > h.n)
				FROM %[7]sjsonb_array_elements(%[2]s) WITH ORDINALITY AS h(value, n) WHERE %[1]s->>'deleted_at' IS NULL AND jsonb_typeof(h.value) = 'object'`,
				doc, array, m.To, m.At, rank("(h.value->>'"+m.To+"')"), rank("(l.value->>'"+m.To+"')"), from)
		}
	}
	index := func(suffix, cols string) string {
		return fmt.Sprintf("CREATE INDEX %s ON %s (%s)", quoteIdent(table+"_fieldcrm_moves_"+suffix), sideTable, cols)
	}
	// Every column the report reads, so that it reads these entries alone.
	create = append(create, index("at", "tenant, at, rank, later, owner_id, team_id, stage"),
		index("ended", "tenant, ended, rank, owner_id, team_id, stage, at"))
	doc, tenant, id := "_ferretdb_sjson", "->>'$.tenant_id'", "->>'$._id'"
	changed := func(f string) string {
		return fmt.Sprintf("(OLD.%[1]s->'$.%[2]s') IS NOT (NEW.%[1]s->'$.%[2]s')", doc, f)
	}
	if !d.sqlite {
		doc, tenant, id = "_jsonb", "->>'tenant_id'", "->>'_id'"
		changed = func(f string) string {
			return fmt.Sprintf("(OLD.%[1]s->'%[2]s') IS DISTINCT FROM (NEW.%[1]s->'%[2]s')", doc, f)
		}
	}
	remove := fmt.Sprintf("DELETE FROM %s WHERE tenant = OLD.%s%s AND id = OLD.%s%s", sideTable, doc, tenant, doc, id)
	insert := fmt.Sprintf("INSERT INTO %s (%s) %s", sideTable, columns, rows("NEW", ""))
	// What the rows hold of a record (its tenant and id never change).
	var when []string
	for _, f := range []string{m.Array, "owner_id", "team_id", "deleted_at"} {
		when = append(when, changed(f))
	}
	out := sideDDL{create: create, fill: []string{fmt.Sprintf("INSERT INTO %s (%s) %s", sideTable, columns, rows("d", fillFrom))}}
	if d.sqlite {
		out.triggers = []string{
			"CREATE TRIGGER \"{name}_insert\" AFTER INSERT ON " + quoteIdent(table) + " BEGIN\n" + insert + ";\nEND",
			"CREATE TRIGGER \"{name}_delete\" AFTER DELETE ON " + quoteIdent(table) + " BEGIN\n" + remove + ";\nEND",
			"CREATE TRIGGER \"{name}_update\" AFTER UPDATE ON " + quoteIdent(table) + " WHEN " + strings.Join(when, " OR ") +
				" BEGIN\n" + remove + ";\n" + insert + ";\nEND",
		}
	} else {
		out.triggers = pgSideTriggers(d.qualify(table), remove, insert, when)
	}
	return out.named("moves")
}

// pgSideTriggers are the PostgreSQL triggers that keep a side table of
// table (qualified) in step: one function for both, which on an update
// removes OLD's rows (remove) and adds NEW's (insert), run on an update
// only when one of when holds (a field the side table copies changed).
func pgSideTriggers(table, remove, insert string, when []string) []string {
	return []string{
		"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $fieldcrm$\nBEGIN\n" +
			"IF TG_OP <> 'INSERT' THEN " + remove + "; END IF;\n" +
			"IF TG_OP <> 'DELETE' THEN " + insert + "; END IF;\nRETURN NULL;\nEND\n$fieldcrm$",
		"CREATE TRIGGER \"{name}_write\" AFTER INSERT OR DELETE ON " + table + " FOR EACH ROW EXECUTE FUNCTION {function}()",
		"CREATE TRIGGER \"{name}_update\" AFTER UPDATE ON " + table + " FOR EACH ROW WHEN (" + strings.Join(when, " OR ") +
			") EXECUTE FUNCTION {function}()",
	}
}

// IndexMoves creates m's side table, its indexes and triggers, filled from
// the records already there, in one transaction, unless the table has
// them as this code makes them; a side table made by other code (an older
// funnel) is dropped with its triggers first. It says whether it built the
// table.
func (t *Tables) IndexMoves(ctx context.Context, m Moves) (bool, error) {
	table, err := t.table(ctx, m.Coll)
	if err != nil || table == "" {
		return false, err
	}
	return t.buildSide(ctx, table, "moves", t.movesDDL(table, m))
}

// buildSide creates table's side table of kind what from ddl, unless the
// table has ddl's triggers; a side table of that kind made by other code
// is dropped with its triggers first. It says whether it built the table.
func (t *Tables) buildSide(ctx context.Context, table, what string, ddl sideDDL) (bool, error) {
	built := false
	build := func(tx execer) error {
		current, old, err := t.sideTriggers(ctx, tx, table, what, ddl.name)
		if err != nil {
			return err
		}
		if current != "" {
			// The triggers of a dropped table would fail every write.
			there, err := t.sideThere(ctx, tx, table, what)
			if err != nil || there {
				return err
			}
			old = append(old, current)
		}
		var stmts []string
		if t.dialect.sqlite {
			for _, name := range old {
				stmts = append(stmts, "DROP TRIGGER IF EXISTS "+quoteIdent(name))
			}
			stmts = append(stmts, "DROP TABLE IF EXISTS "+side(table, what))
		} else {
			for _, name := range old {
				stmts = append(stmts, "DROP TRIGGER IF EXISTS "+quoteIdent(name)+" ON "+t.dialect.qualify(table))
			}
			stmts = append(stmts, "DROP TABLE IF EXISTS "+t.dialect.qualify(table+"_fieldcrm_"+what))
			// The functions of older triggers: no longer called.
			for _, name := range old {
				if prefix, _, ok := strings.Cut(name[len(sidePrefix(what)):], "_"); ok {
					stmts = append(stmts, "DROP FUNCTION IF EXISTS "+t.dialect.qualify(table+"_"+sidePrefix(what)+prefix)+"()")
				}
			}
		}
		stmts = append(stmts, ddl.create...)
		// Names made of FerretDB's table names: letters, digits and _.
		name, function := table+"_"+ddl.name, ""
		if !t.dialect.sqlite {
			name, function = ddl.name, t.dialect.qualify(table+"_"+ddl.name)
		}
		for _, s := range ddl.triggers {
			stmts = append(stmts, strings.NewReplacer("{name}", name, "{function}", function).Replace(s))
		}
		stmts = append(stmts, ddl.fill...)
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("index the %s of %s: %w\n%s", what, table, err, s)
			}
		}
		built = true
		return nil
	}
	var err error
	if t.dialect.sqlite {
		err = t.sqliteDDL(ctx, build)
	} else {
		err = t.postgresDDL(ctx, table, what, build)
	}
	return built, err
}

// sideThere says whether table's side table of kind what exists.
func (t *Tables) sideThere(ctx context.Context, tx execer, table, what string) (bool, error) {
	q, name := `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?`, table+"_fieldcrm_"+what
	if !t.dialect.sqlite {
		q, name = `SELECT to_regclass($1) IS NOT NULL`, t.dialect.qualify(name)
	}
	var there bool
	if err := tx.QueryRowContext(ctx, q, name).Scan(&there); err != nil {
		return false, fmt.Errorf("look up the %s of %s: %w", what, table, err)
	}
	return there, nil
}

// sideTriggers names a trigger of table of side tables of kind what named
// by name, if it has one, and the other triggers of that kind it has.
func (t *Tables) sideTriggers(ctx context.Context, tx execer, table, what, name string) (current string, old []string, err error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1 AND substr(name, 1, length(?2)) = ?2`
	prefix := table + "_" + sidePrefix(what)
	if !t.dialect.sqlite {
		q = `SELECT tg.tgname FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace ns ON ns.oid = c.relnamespace
			WHERE c.relname = $1 AND left(tg.tgname, length($2)) = $2 AND ns.nspname = $3`
		prefix = sidePrefix(what)
	}
	args := []any{table, prefix}
	if !t.dialect.sqlite {
		args = append(args, t.schema)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return "", nil, fmt.Errorf("list the triggers of %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return "", nil, fmt.Errorf("list the triggers of %s: %w", table, err)
		}
		if strings.HasPrefix(strings.TrimPrefix(n, table+"_"), name+"_") && current == "" {
			current = n
		} else {
			old = append(old, n)
		}
	}
	return current, old, rows.Err()
}

// postgresDDL runs ddl in one transaction, holding a lock that another
// replica starting at the same moment waits for (it then finds the work
// done). Creating a trigger locks out the table's writers until the
// commit, so the fill sees every record and misses no write.
func (t *Tables) postgresDDL(ctx context.Context, table, what string, ddl func(tx execer) error) error {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index %s: %w", table, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", t.schema+"."+table+"."+what); err != nil {
		return fmt.Errorf("lock %s for indexing: %w", table, err)
	}
	if err := ddl(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index %s: %w", table, err)
	}
	return nil
}

// Funnel counts the moves of m in f's period from the side table: the
// moves into each stage of the funnel and how many of them advanced later,
// and the stays that ended in the period with their total length. It
// returns ErrUntranslatable for a Query it cannot express on the side
// table's columns, and when the side table is not there (yet).
func (t *Tables) Funnel(ctx context.Context, m Moves, f models.Funnel) ([]models.FunnelCount, error) {
	stmt, args, err := t.dialect.funnelOf(f)
	if err != nil {
		return nil, err
	}
	var out []models.FunnelCount
	err = t.retry(ctx, m.Coll, func(table string) error {
		out = out[:0]
		if table == "" {
			return nil
		}
		rows, err := t.db.QueryContext(ctx, t.movesStatement(stmt, table), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		at := map[string]int{}
		for rows.Next() {
			var (
				ended   int64
				stage   sql.NullString
				n, k, v int64
			)
			if err := rows.Scan(&ended, &stage, &n, &k, &v); err != nil {
				return err
			}
			i, seen := at[stage.String]
			if !seen {
				i, at[stage.String] = len(out), len(out)
				out = append(out, models.FunnelCount{Stage: stage.String})
			}
			if ended == 1 {
				out[i].Stays, out[i].StayMillis = n, v
			} else {
				out[i].Entered, out[i].Advanced = n, k
			}
		}
		return rows.Err()
	})
	if isMissingTable(err) {
		return nil, fmt.Errorf("%w: no side table of moves: %v", ErrUntranslatable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("funnel of %s of tenant %s: %w", m.Coll, f.Tenant, err)
	}
	return out, nil
}

// ExplainFunnel returns the database's plan for Funnel, so that tests can
// check that it reads the side table's indexes and nothing else.
func (t *Tables) ExplainFunnel(ctx context.Context, m Moves, f models.Funnel) (string, error) {
	stmt, args, err := t.dialect.funnelOf(f)
	if err != nil {
		return "", err
	}
	table, err := t.table(ctx, m.Coll)
	if err != nil {
		return "", err
	}
	// explain formats the statement with the table's name: a comment takes it.
	return t.explain(ctx, m.Coll, strings.ReplaceAll(t.movesStatement(stmt, table), "%", "%%")+" /* %[1]s */", args...)
}

// movesStatement puts the side table of table and its indexes into stmt.
func (t *Tables) movesStatement(stmt, table string) string {
	moves := side(table, "moves")
	if !t.dialect.sqlite {
		moves = t.dialect.qualify(table + "_fieldcrm_moves")
	}
	return strings.NewReplacer("{moves}", moves, "{at}", quoteIdent(table+"_fieldcrm_moves_at"),
		"{ended}", quoteIdent(table+"_fieldcrm_moves_ended")).Replace(stmt)
}

// funnelOf is the statement of a funnel: the moves into each stage in the
// period, read from the (tenant, at, …) index, and the stays that ended in
// it, from the (tenant, ended, …) index; each row says which it is.
func (d dialect) funnelOf(f models.Funnel) (string, []any, error) {
	if f.WithDeleted || f.OrAssignee != "" {
		return "", nil, fmt.Errorf("%w: a funnel of deleted records, or of an assignee", ErrUntranslatable)
	}
	b := &sqlBuilder{d: d}
	from, to := f.From.UnixMilli(), f.To.UnixMilli()
	// Dates are stored to the millisecond: a bound within one moves up to
	// the next, as a Query's period does.
	if f.From.Truncate(time.Millisecond).Before(f.From) {
		from++
	}
	if f.To.Truncate(time.Millisecond).Before(f.To) {
		to++
	}
	var vis []string
	if !f.Scope.All {
		var or []string
		in := func(col string, values []string) {
			if len(values) == 0 {
				return
			}
			ps := make([]string, len(values))
			for i, v := range values {
				ps[i] = b.arg(v)
			}
			or = append(or, col+" IN ("+strings.Join(ps, ", ")+")")
		}
		in("owner_id", f.Scope.OwnerIDs)
		in("team_id", f.Scope.TeamIDs)
		if f.Scope.Pool {
			in("owner_id", []string{""})
		}
		if len(or) == 0 {
			or = []string{"FALSE"}
		}
		vis = append(vis, "("+strings.Join(or, " OR ")+")")
	}
	for _, c := range f.Conds {
		v, ok := c.Value.(string)
		if c.Op != models.OpEq || !ok || (c.Field != "owner_id" && c.Field != "team_id") {
			return "", nil, fmt.Errorf("%w: a funnel of customers with %s %s %v", ErrUntranslatable, c.Field, c.Op, c.Value)
		}
		vis = append(vis, c.Field+" = "+b.arg(v))
	}
	// The parameters of the visibility come first, once for both halves.
	tenant, lo, hi := b.arg(f.Tenant), b.arg(from), b.arg(to)
	visible := ""
	if len(vis) > 0 {
		visible = " AND " + strings.Join(vis, " AND ")
	}
	// SQLite is told the index of each half: with statistics of a whole
	// tenant it may prefer another index of the table, and read rows.
	advanced, stayed, hint := "sum(later > rank)", "sum(ended - at)", func(string) string { return "" }
	if d.sqlite {
		hint = func(index string) string { return " INDEXED BY " + index }
	} else {
		advanced, stayed = "sum((later > rank)::int)", "sum(ended - at)::bigint"
	}
	stmt := fmt.Sprintf(`SELECT 0 AS ended, stage, count(*), coalesce(%[5]s, 0), 0 FROM {moves}%[6]s WHERE tenant = %[1]s AND at >= %[2]s AND at < %[3]s AND rank > 0%[4]s GROUP BY stage
UNION ALL
SELECT 1, stage, count(*), 0, coalesce(%[7]s, 0) FROM {moves}%[8]s WHERE tenant = %[1]s AND ended >= %[2]s AND ended < %[3]s AND rank > 0%[4]s GROUP BY stage`,
		tenant, lo, hi, visible, advanced, hint("{at}"), stayed, hint("{ended}"))
	return stmt, b.args, nil
}
