package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
)

// Written pages reach the database file without the writer copying them
// there itself: the background checkpointer does, long before the writer's
// own threshold.
func TestCheckpointsCopyTheLogIntoTheDatabaseFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db.sqlite")
	setup, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	for _, q := range []string{
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('notes', 'notes_1')`,
		`CREATE TABLE notes_1 (_ferretdb_sjson TEXT NOT NULL)`,
	} {
		if _, err := setup.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := IndexIDLookups(ctx, dir, "db"); err != nil {
		t.Fatal(err)
	}
	tables, err := OpenTables(dir, "_pragma=synchronous(normal)", "", "db")
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	before := fileSize(t, path)
	// About 2.4 MB: 600 pages, under SQLite's default threshold of 1,000
	// pages and far under the writer's, so only the checkpointer copies them.
	body := strings.Repeat("x", 4000)
	for i := range 600 {
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("note-%d", i)}, {Key: "body", Value: body}})
		if err != nil {
			t.Fatal(err)
		}
		if err := tables.Write(ctx, DocWrite{Coll: "notes", Doc: doc}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for fileSize(t, path) < before+2_000_000 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes, %d before 2.4 MB of writes: the log was not checkpointed", fileSize(t, path), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := tables.Get(ctx, "notes", "note-599"); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}
