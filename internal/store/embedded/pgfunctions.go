package embedded

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// Functions fieldcrm adds to the database's schema on PostgreSQL: one that an
// index of short needles is built on, and one that turns a page's documents
// into text only once the page is cut. Both are made at start-up (see
// ensureFunctions); a statement names them only once they are there.

// Short needles on PostgreSQL.
//
// pg_trgm finds a needle of three characters or more; one of one or two
// characters (王伟, 张静, "q7") gives it no trigram, and its index then
// names every record. A search's walk of the list (see search.go) answers
// such a needle when many records hold it; a rare one (王伟 is in about
// one customer in 600) walks without filling the page and then read the
// whole table: 90 ms at 20,000 customers, 0.5 s at 100,000.
//
// So each SearchTerms field also gets a GIN index of the distinct one- and
// two-character substrings of its items (shortGramsFunc, an immutable SQL
// function of the array, since an index expression holds no subquery),
// and a search for a short needle's candidates asks it for the records
// whose substrings hold the needle itself. The condition on the items
// still decides. SQLite needs none of this: its walk and its candidates
// read index entries and the search tables, never the documents.

// shortGramsFunc names the function of the grams in a schema; a change to
// its body needs a new name (the indexes built on it would be wrong).
const shortGramsFunc = "fieldcrm_short_grams_v1"

// shortGramsBody is shortGramsFunc's SQL: the distinct substrings of one
// and two characters of the items of a JSON array of strings (none of
// anything else).
const shortGramsBody = `SELECT coalesce(array_agg(DISTINCT substr(item, i, n)), '{}')
	FROM jsonb_array_elements_text(CASE jsonb_typeof(items) WHEN 'array' THEN items ELSE '[]' END) AS item,
		generate_series(1, char_length(item)) AS i, (VALUES (1), (2)) AS len(n)
	WHERE i + n - 1 <= char_length(item)`

// A page's documents.
//
// A list page on PostgreSQL that its planner sorts (a month of interactions
// listed by id: the month's index names them, then they are sorted) turned
// every record it read into text before the sort, though only the page's
// 51 are sent: 44 ms for a month of 1,700 interactions, in proportion to
// the month. PostgreSQL postpones an output past the sort and the limit
// when it is costly, so the page's documents are written as
// pageDocumentFunc, the same cast with a high cost (and a SET clause, which
// keeps PostgreSQL from inlining it and forgetting the cost): 9.7 ms.
const pageDocumentFunc = "fieldcrm_page_document_v1"

// pgFunction is a function of fieldcrm's in the schema: its name and the
// rest of its CREATE FUNCTION statement.
type pgFunction struct{ name, definition string }

// pgFunctions are the functions ensureFunctions makes.
func pgFunctions() []pgFunction {
	return []pgFunction{
		{shortGramsFunc, `(items jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$` + shortGramsBody + `$$`},
		{pageDocumentFunc, `(doc jsonb) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 100000
		SET search_path = pg_catalog AS $$SELECT doc::text$$`},
	}
}

// function is the qualified name of fieldcrm's function name in t's schema.
func (t *Tables) function(name string) string {
	return quoteIdent(t.schema) + "." + name
}

// shortGrams is the qualified function of the grams in t's schema.
func (t *Tables) shortGrams() string { return t.function(shortGramsFunc) }

// ensureFunctions creates pgFunctions in t's schema (PostgreSQL) where they
// are missing, and says whether they are all there now. A schema FerretDB
// has not made yet (no collection) gets them at the next start.
func (t *Tables) ensureFunctions(ctx context.Context) (bool, error) {
	var schema bool
	if err := t.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, t.schema).Scan(&schema); err != nil {
		return false, fmt.Errorf("look up schema %s: %w", t.schema, err)
	}
	if !schema {
		return false, nil
	}
	for _, fn := range pgFunctions() {
		var exists bool
		err := t.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = $1 AND p.proname = $2)`, t.schema, fn.name).Scan(&exists)
		if err != nil {
			return false, fmt.Errorf("look up %s: %w", fn.name, err)
		}
		if exists {
			continue
		}
		_, err = t.db.ExecContext(ctx, "CREATE FUNCTION "+t.function(fn.name)+fn.definition)
		if err != nil && !isDuplicateFunction(err) {
			return false, fmt.Errorf("create %s: %w", fn.name, err)
		}
	}
	return true, nil
}

// isDuplicateFunction tells another replica's creation of the function
// winning the race: duplicate_function, or the unique index of the
// catalogue when both inserted at once.
func isDuplicateFunction(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42723" || pe.Code == "23505")
}

// withFunctions is t's dialect naming fieldcrm's functions once they are
// there (PostgreSQL).
func (t *Tables) withFunctions() dialect {
	d := t.dialect
	if t.functionsReady.Load() {
		d.shortGrams, d.pageDocument = t.shortGrams(), t.function(pageDocumentFunc)
	}
	return d
}

// shortGramsSpecs are the indexes of the grams of coll's SearchTerms fields.
func (t *Tables) shortGramsSpecs(coll string, fields Fields) []indexSpec {
	var specs []indexSpec
	_, searched := sideFields(fields)
	for _, f := range searched {
		if fields[f] != SearchTerms {
			continue
		}
		specs = append(specs, indexSpec{coll: coll, suffix: "_fieldcrm_grams_" + f, using: "gin",
			exprs: []string{"(" + t.shortGrams() + "(" + t.dialect.column + "->'" + f + "'))"}})
	}
	return specs
}

// shortNeedle tells a needle of one or two characters, which the grams
// find and the trigrams do not.
func shortNeedle(needle string) bool {
	n := utf8.RuneCountInString(needle)
	return n >= 1 && n <= 2
}
