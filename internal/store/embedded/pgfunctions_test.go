package embedded

import (
	"context"
	"os"
	"testing"
)

// fieldcrm's reads on PostgreSQL are not JIT-compiled (see OpenTables): a
// walk's plan passed jit_above_cost at 100,000 customers and took three
// times as long compiled.
func TestPostgreSQLReadsAreNotCompiled(t *testing.T) {
	url := os.Getenv("FERRETDB_POSTGRESQL_URL")
	if url == "" {
		t.Skip("PostgreSQL's setting")
	}
	tables, err := OpenTables("", "", url, "jit_test")
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	var jit string
	if err := tables.db.QueryRowContext(context.Background(), "SHOW jit").Scan(&jit); err != nil {
		t.Fatal(err)
	}
	if jit != "off" {
		t.Errorf("jit is %q on fieldcrm's connections", jit)
	}
}
