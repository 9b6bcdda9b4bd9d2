package embedded

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Arrays of strings (a customer's tags, its search keys) cannot be indexed
// by an expression index on SQLite, nor can substrings of any text, so each
// table with such fields gets side tables that triggers keep in step with
// every write, FerretDB's and ours, in the writer's own transaction:
//
//   - <table>_fieldcrm_terms: one row (tenant, field, item, _id) per item of
//     every Terms and SearchTerms field, for "the records whose tags hold x";
//   - <table>_fieldcrm_rows: a number of its own for each document, which
//     stays the same through VACUUM (FerretDB's rowids need not);
//   - <table>_fieldcrm_fts_<field>: for each SearchTerms and SearchText
//     field, an FTS5 table with the trigram tokenizer over its text (an
//     array's items joined by newlines), one row per document under that
//     number, for substring searches;
//   - <table>_fieldcrm_grams: one row (tenant, field, gram, number) per
//     distinct substring of one or two characters, at least one of them
//     not ASCII, of the items of every SearchTerms field: the candidates
//     of a needle too short for a trigram (王伟, 李), which FTS5 finds only
//     by reading its whole table. Pieces of ASCII alone are left out: the
//     few thousand there are each sit in many records, where a walk of the
//     list fills its page at once, and they would make every record's
//     e-mail and phone write a hundred rows more.
//
// On PostgreSQL the same questions are answered by GIN indexes on the
// arrays (jsonb containment) and pg_trgm on the searched text.

// sideVersion names the triggers; a change to them needs a new one, and
// the triggers of the versions before it (olderSideVersions) are dropped
// when it is made. Version 2 reads each array as json_each(doc->'$.f'):
// json_each(doc, '$.f') parsed the whole record for each array, where ->
// goes through the trigger's cache of parsed documents (a customer's insert
// parsed its whole JSON once per array read here, and once more). Version 3
// keeps the short substrings (grams) too.
const sideVersion = "_fieldcrm_v3_"

// olderSideVersions are the earlier names of the triggers. Their side
// tables are those of sideVersion, kept in step by them, but for the grams
// (version 3's), filled at the upgrade: an upgrade replaces the triggers.
func olderSideVersions() []string { return []string{"_fieldcrm_v1_", "_fieldcrm_v2_"} }

// gramPositions is how many characters of an item its grams are taken
// from: more than any search key holds (a name is at most
// models.MaxNameLength characters, a company name models.MaxShortText, an
// e-mail models.MaxEmailLength bytes, a number and a phone a few dozen). The table of the positions, 1 to gramPositions, is what a
// trigger joins an item with to cut it (a trigger may not recurse).
const gramPositions = 1024

const positionsTable = "_fieldcrm_positions"

// side names the side table suffix of table, quoted.
func side(table, suffix string) string { return quoteIdent(table + "_fieldcrm_" + suffix) }

// sideTokens replaces the side tables' tokens in a statement with their
// names: {terms}, {rows} and {fts:<field>}.
func sideTokens(stmt, table string) string {
	for {
		i := strings.Index(stmt, "{fts:")
		if i < 0 {
			break
		}
		j := strings.IndexByte(stmt[i:], '}')
		stmt = stmt[:i] + side(table, "fts_"+stmt[i+5:i+j]) + stmt[i+j+1:]
	}
	return strings.NewReplacer("{terms}", side(table, "terms"), "{rows}", side(table, "rows"), "{grams}", side(table, "grams")).Replace(stmt)
}

// sideFields returns, sorted, the fields of fields whose items are indexed
// (Terms, SearchTerms) and those searched by substring (SearchTerms,
// SearchText).
func sideFields(fields Fields) (terms, searched []string) {
	for f, k := range fields {
		if k == Terms || k == SearchTerms {
			terms = append(terms, f)
		}
		if k == SearchTerms || k == SearchText {
			searched = append(searched, f)
		}
	}
	slices.Sort(terms)
	slices.Sort(searched)
	return terms, searched
}

// ensureSideTables creates the side tables and triggers of coll's table on
// SQLite, filling them from the documents already there, in one
// transaction; it says whether it created them.
func (t *Tables) ensureSideTables(ctx context.Context, tx execer, coll string, fields Fields) (bool, error) {
	terms, searched := sideFields(fields)
	if len(terms) == 0 && len(searched) == 0 {
		return false, nil
	}
	table, err := t.table(ctx, coll)
	if err != nil || table == "" {
		return false, err
	}
	trigger := table + sideVersion + "insert"
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'trigger' AND name = ?`, trigger).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up trigger %s: %w", trigger, err)
	}
	if exists {
		return false, nil
	}
	var older []string
	for _, v := range olderSideVersions() {
		var there bool
		if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'trigger' AND name = ?`, table+v+"insert").Scan(&there); err != nil {
			return false, fmt.Errorf("look up trigger %s: %w", table+v+"insert", err)
		}
		if there {
			older = append(older, v)
		}
	}
	var gramsThere bool
	if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?`, table+"_fieldcrm_grams").Scan(&gramsThere); err != nil {
		return false, fmt.Errorf("look up the grams of %s: %w", table, err)
	}
	doc := func(row string) string { return row + "._ferretdb_sjson" }
	tenant := func(row string) string { return "(" + doc(row) + "->>'$.tenant_id')" }
	id := func(row string) string { return "(" + doc(row) + "->>'$._id')" }
	number := func(row string) string {
		return fmt.Sprintf("(SELECT n FROM %s WHERE id = %s)", side(table, "rows"), id(row))
	}
	text := func(row, f string) string {
		if fields[f] == SearchText {
			return "(" + doc(row) + "->>'$." + f + "')"
		}
		return fmt.Sprintf(`(SELECT group_concat(value, char(10)) FROM json_each(%s->'$.%s'))`, doc(row), f)
	}
	var create, onInsert, onDelete, fill, changed []string
	if len(terms) > 0 {
		create = append(create, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (tenant TEXT NOT NULL, field TEXT NOT NULL, term TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (tenant, field, term, id)) WITHOUT ROWID`, side(table, "terms")))
	}
	for _, f := range terms {
		insert := func(row, from string) string {
			return fmt.Sprintf(`INSERT OR IGNORE INTO %s (tenant, field, term, id) SELECT %s, '%s', j.value, %s FROM %sjson_each(%s->'$.%s') AS j WHERE j.type = 'text'`,
				side(table, "terms"), tenant(row), f, id(row), from, doc(row), f)
		}
		onInsert = append(onInsert, insert("NEW", ""))
		fill = append(fill, insert("d", quoteIdent(table)+" AS d, "))
		onDelete = append(onDelete, fmt.Sprintf(`DELETE FROM %s WHERE tenant = %s AND field = '%s' AND term IN (SELECT value FROM json_each(%s->'$.%s')) AND id = %s`,
			side(table, "terms"), tenant("OLD"), f, doc("OLD"), f, id("OLD")))
		changed = append(changed, fmt.Sprintf(`(%s->'$.%s') IS NOT (%s->'$.%s')`, doc("OLD"), f, doc("NEW"), f))
	}
	if len(searched) > 0 {
		create = append(create, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL)`, side(table, "rows")))
		onInsert = append(onInsert, fmt.Sprintf(`INSERT INTO %s (id, tenant) VALUES (%s, %s)`, side(table, "rows"), id("NEW"), tenant("NEW")))
		fill = append(fill, fmt.Sprintf(`INSERT OR IGNORE INTO %s (id, tenant) SELECT %s, %s FROM %s AS d`, side(table, "rows"), id("d"), tenant("d"), quoteIdent(table)))
	}
	for _, f := range searched {
		fts := side(table, "fts_"+f)
		// Search keys are stored in lower case and searched so (GLOB, case
		// sensitive); other text is searched with LIKE, case-insensitive.
		caseSensitive := map[bool]int{true: 1, false: 0}[fields[f] == SearchTerms]
		create = append(create, fmt.Sprintf(`CREATE VIRTUAL TABLE IF NOT EXISTS %s USING fts5(items, tokenize = 'trigram case_sensitive %d')`, fts, caseSensitive))
		onInsert = append(onInsert, fmt.Sprintf(`INSERT INTO %s (rowid, items) VALUES (%s, %s)`, fts, number("NEW"), text("NEW", f)))
		onDelete = append(onDelete, fmt.Sprintf(`DELETE FROM %s WHERE rowid = %s`, fts, number("OLD")))
		fill = append(fill, fmt.Sprintf(`INSERT INTO %s (rowid, items) SELECT r.n, %s FROM %s AS d JOIN %s AS r ON r.id = %s`,
			fts, text("d", f), quoteIdent(table), side(table, "rows"), id("d")))
		changed = append(changed, fmt.Sprintf(`(%s->'$.%s') IS NOT (%s->'$.%s')`, doc("OLD"), f, doc("NEW"), f))
	}
	var gramsCreate, gramsFill []string
	for _, f := range searched {
		if fields[f] != SearchTerms {
			continue
		}
		if gramsCreate == nil {
			gramsCreate = []string{
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (tenant TEXT NOT NULL, field TEXT NOT NULL, gram TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (tenant, field, gram, n)) WITHOUT ROWID`, side(table, "grams")),
				`CREATE TABLE IF NOT EXISTS ` + positionsTable + ` (i INTEGER PRIMARY KEY)`,
				fmt.Sprintf(`INSERT OR IGNORE INTO %s (i) WITH RECURSIVE p(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM p WHERE i < %d) SELECT i FROM p`, positionsTable, gramPositions),
			}
		}
		// The pieces of one and two characters (gram) of the items of
		// row's field f, those with a character past ASCII (more bytes
		// than characters); from goes before the items, which it may name.
		// The joins are fixed (CROSS JOIN): each item, then its positions
		// as a range of the table's key. The planner, left to itself,
		// read the whole table of positions for every item (7 ms an insert).
		const gram = "substr(j.value, p.i, l.len)"
		pieces := func(row, from string) string {
			return fmt.Sprintf(`FROM %sjson_each(%s->'$.%s') AS j CROSS JOIN %s AS p CROSS JOIN (SELECT 1 AS len UNION ALL SELECT 2) AS l
	WHERE j.type = 'text' AND p.i <= length(j.value) AND p.i + l.len - 1 <= length(j.value) AND length(CAST(%s AS BLOB)) > l.len`, from, doc(row), f, positionsTable, gram)
		}
		onInsert = append(onInsert, fmt.Sprintf(`INSERT OR IGNORE INTO %s (tenant, field, gram, n) SELECT %s, '%s', %s, %s %s`,
			side(table, "grams"), tenant("NEW"), f, gram, number("NEW"), pieces("NEW", "")))
		onDelete = append(onDelete, fmt.Sprintf(`DELETE FROM %s WHERE tenant = %s AND field = '%s' AND gram IN (SELECT %s %s) AND n = %s`,
			side(table, "grams"), tenant("OLD"), f, gram, pieces("OLD", ""), number("OLD")))
		gramsFill = append(gramsFill, fmt.Sprintf(`INSERT OR IGNORE INTO %s (tenant, field, gram, n) SELECT %s, '%s', %s, r.n %s`,
			side(table, "grams"), tenant("d"), f, gram,
			pieces("d", fmt.Sprintf("%s AS d JOIN %s AS r ON r.id = %s, ", quoteIdent(table), side(table, "rows"), id("d")))))
	}
	create = append(create, gramsCreate...)
	if len(searched) > 0 {
		onDelete = append(onDelete, fmt.Sprintf(`DELETE FROM %s WHERE id = %s`, side(table, "rows"), id("OLD")))
	}
	body := func(parts ...[]string) string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		return strings.Join(all, ";\n") + ";"
	}
	// An update that leaves these fields alone (most do) touches nothing here.
	stmts := append(create,
		fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s BEGIN\n%s\nEND", quoteIdent(trigger), quoteIdent(table), body(onInsert)),
		fmt.Sprintf("CREATE TRIGGER %s AFTER DELETE ON %s BEGIN\n%s\nEND", quoteIdent(table+sideVersion+"delete"), quoteIdent(table), body(onDelete)),
		fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON %s WHEN %s BEGIN\n%s\nEND", quoteIdent(table+sideVersion+"update"), quoteIdent(table),
			strings.Join(changed, " OR "), body(onDelete, onInsert)))
	if len(older) > 0 {
		// The side tables are filled and in step: replace the triggers,
		// and fill the grams when the earlier version had none.
		stmts = stmts[len(create):]
		for _, v := range older {
			for _, op := range []string{"insert", "delete", "update"} {
				stmts = append([]string{"DROP TRIGGER IF EXISTS " + quoteIdent(table+v+op)}, stmts...)
			}
		}
		if !gramsThere {
			stmts = append(append(slices.Clone(gramsCreate), stmts...), gramsFill...)
		}
	} else {
		stmts = append(append(stmts, fill...), gramsFill...) // what the table holds already
	}
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("index the arrays and text of %s: %w\n%s", coll, err, stmt)
		}
	}
	return true, nil
}

// listSpecs are the PostgreSQL indexes of coll's side fields: GIN for
// containment in arrays, and pg_trgm on the searched text (an array's JSON
// text) when trigrams is set (the extension is there).
func (t *Tables) listSpecs(coll string, fields Fields, trigrams bool) []indexSpec {
	terms, searched := sideFields(fields)
	var specs []indexSpec
	for _, f := range terms {
		specs = append(specs, indexSpec{coll: coll, suffix: "_fieldcrm_gin_" + f, using: "gin",
			exprs: []string{"(" + t.dialect.column + "->'" + f + "') jsonb_path_ops"}})
	}
	for _, f := range searched {
		if !trigrams {
			break
		}
		expr := "((" + t.dialect.column + "->'" + f + "')::text)"
		if fields[f] == SearchText {
			expr = t.dialect.path(f)
		}
		specs = append(specs, indexSpec{coll: coll, suffix: "_fieldcrm_trgm_" + f, using: "gin", exprs: []string{expr + " gin_trgm_ops"}})
	}
	return specs
}
