package embedded

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The side table of tallies, on PostgreSQL: <table>_fieldcrm_tally holds,
// for every record of a tallied collection, the fields of its tally
// indexes as plain columns (text under the C collation, dates as epoch
// milliseconds, numbers as numeric), with a copy of each tally index on
// them, kept by triggers in the writer's own transaction (FerretDB's writes
// and ours alike), as the side table of moves is (see Moves).
//
// PostgreSQL cannot answer a tally from an expression index on the
// documents' jsonb: it reads each record the index names and unpacks its
// document, about 10 µs a record, 3 s for the 300,000 interactions of 90
// days in the bench's data. From this table it reads narrow rows of plain
// values (or its copy of the index alone): the same tally in about 0.2 s
// (docs/benchmarks.md). An update that leaves the tallied
// fields alone (most do) touches nothing here.
//
// A date or number field holding another JSON type is NULL here: a tally
// counts it as missing (reading the document, PostgreSQL failed the tally
// on it; here a failed cast would fail the write).

// tallySuffix names a table's side table of tallies.
const tallySuffix = "_fieldcrm_tally"

// IndexTallies creates, on PostgreSQL, the side table of tallies of coll
// with a copy of each of indexes (its tally indexes: those Tally is given
// the names of), filled from the records already there, in one
// transaction, unless the table has it as this code makes it; one made by
// other code (other indexes) is dropped first. It says whether it built
// the table. On SQLite, where a tally reads its index's entries alone, it
// does nothing.
func (t *Tables) IndexTallies(ctx context.Context, coll string, indexes []Index, fields Fields) (bool, error) {
	if t.dialect.sqlite || len(indexes) == 0 {
		return false, nil
	}
	table, err := t.table(ctx, coll)
	if err != nil || table == "" {
		return false, err
	}
	ddl, err := t.tallyDDL(table, indexes, fields)
	if err != nil {
		return false, fmt.Errorf("index the tallies of %s: %w", coll, err)
	}
	return t.buildSide(ctx, table, "tally", ddl)
}

// tallyDDL returns the statements of the side table of tallies of table.
func (t *Tables) tallyDDL(table string, indexes []Index, fields Fields) (sideDDL, error) {
	d := t.dialect
	sideTable := d.qualify(table + tallySuffix)
	// The record's tenant and id first: the key its triggers find its row
	// by, id first, so that the key is no index of a tenant's rows (the
	// planner took it for the tally indexes, and read rows for the fields).
	cols := []string{"tenant_id", "_id"}
	for _, ix := range indexes {
		for _, f := range ix.Fields {
			if !slices.Contains(cols, f) {
				cols = append(cols, f)
			}
		}
	}
	kind := func(f string) Kind {
		if f == "tenant_id" || f == "_id" {
			return Text
		}
		return fields[f]
	}
	values := func(row string) string {
		var out []string
		for _, f := range cols {
			_, e := tallyColumn(row+"._jsonb", f, kind(f))
			out = append(out, e)
		}
		return strings.Join(out, ", ")
	}
	var defs, quoted, changed []string
	for _, f := range cols {
		k := kind(f)
		typ, _ := tallyColumn("", f, k)
		if typ == "" {
			return sideDDL{}, fmt.Errorf("field %s of kind %d: a tally index holds text, dates and numbers", f, k)
		}
		defs = append(defs, quoteIdent(f)+" "+typ)
		quoted = append(quoted, quoteIdent(f))
		changed = append(changed, fmt.Sprintf("(%s) IS DISTINCT FROM (%s)", jsonbPath("OLD._jsonb", f, "->"), jsonbPath("NEW._jsonb", f, "->")))
	}
	create := []string{fmt.Sprintf("CREATE TABLE %s (%s, PRIMARY KEY (_id, tenant_id))", sideTable, strings.Join(defs, ", "))}
	for _, ix := range indexes {
		var on []string
		for _, f := range ix.Fields {
			on = append(on, quoteIdent(f))
		}
		create = append(create, fmt.Sprintf("CREATE INDEX %s ON %s (%s)", quoteIdent(table+"_fieldcrm_"+ix.Name), sideTable, strings.Join(on, ", ")))
	}
	// A record without a tenant or an id (none of ours) is never tallied;
	// leaving it out keeps its write from failing on the key.
	keyed := func(row string) string {
		return fmt.Sprintf("%[1]s._jsonb->>'tenant_id' IS NOT NULL AND %[1]s._jsonb->>'_id' IS NOT NULL", row)
	}
	columns := strings.Join(quoted, ", ")
	remove := fmt.Sprintf("DELETE FROM %s WHERE tenant_id = OLD._jsonb->>'tenant_id' AND _id = OLD._jsonb->>'_id'", sideTable)
	insert := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s WHERE %s", sideTable, columns, values("NEW"), keyed("NEW"))
	out := sideDDL{
		create:   create,
		triggers: pgSideTriggers(d.qualify(table), remove, insert, changed),
		// Statistics at once: without them the planner sorted 100,000
		// rows for a GROUP BY it hashes in a quarter of the time.
		fill: []string{fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s AS d WHERE %s", sideTable, columns, values("d"), d.qualify(table), keyed("d")),
			"ANALYZE " + sideTable},
	}
	return out.named("tally"), nil
}

// tallyColumn is the PostgreSQL type of the side table's column of field f
// of kind k ("" for a kind a tally does not read), and the expression of
// its value in the jsonb document doc: what dialect.value reads from the
// document, without a cast that could fail.
func tallyColumn(doc, f string, k Kind) (typ, value string) {
	number := fmt.Sprintf("CASE WHEN jsonb_typeof(%s) = 'number' THEN (%s)::numeric END", jsonbPath(doc, f, "->"), jsonbPath(doc, f, "->>"))
	switch k {
	case Text, SearchText:
		return `text COLLATE "C"`, "(" + jsonbPath(doc, f, "->>") + ")"
	case Time:
		return "bigint", "(" + number + ")::bigint"
	case Number:
		return "numeric", number
	}
	return "", ""
}

// jsonbPath is the expression of (dotted) field f of the jsonb doc, its
// last step last (-> for jsonb, ->> for text). (A path literal such as
// '{credit,rating}' would not survive the replacement of {name} in the
// triggers' statements.)
func jsonbPath(doc, f, last string) string {
	parts := strings.Split(f, ".")
	var b strings.Builder
	b.WriteString(doc)
	for i, part := range parts {
		op := "->"
		if i == len(parts)-1 {
			op = last
		}
		b.WriteString(op + "'" + strings.ReplaceAll(part, "'", "''") + "'")
	}
	return b.String()
}
