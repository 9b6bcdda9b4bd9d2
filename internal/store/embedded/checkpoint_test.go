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
	tables, path := openNotes(t)
	before := fileSize(t, path)
	writeNotes(t, tables, "note", 600)
	waitForCheckpoint(t, path, before, 5*time.Second)
	if _, err := tables.Get(context.Background(), "notes", "note-599"); err != nil {
		t.Fatal(err)
	}
}

// While a reader holds a snapshot older than the log's frames no checkpoint
// can copy them, and the checkpointer waits longer between its attempts;
// once the reader is done, an attempt within the longest wait copies them.
func TestCheckpointsResumeAfterALongRead(t *testing.T) {
	ctx := context.Background()
	tables, path := openNotes(t)
	writeNotes(t, tables, "first", 1)
	reader, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	held, err := reader.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := held.QueryRowContext(ctx, "SELECT count(*) FROM notes_1").Scan(&n); err != nil { // takes the snapshot
		t.Fatal(err)
	}
	time.Sleep(2 * checkpointEvery) // the first note's frames are copied
	before := fileSize(t, path)
	writeNotes(t, tables, "note", 600)
	time.Sleep(2 * time.Second) // attempts that copy nothing: the waits grow
	if size := fileSize(t, path); size > before+1_000_000 {
		t.Fatalf("the database file grew from %d to %d bytes past a reader's snapshot", before, size)
	}
	if err := held.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitForCheckpoint(t, path, before, checkpointMaxWait+2*time.Second)
}

// The wait between checkpoints grows only while attempts copy nothing new.
func TestCheckpointWaitGrowsOnlyWhileStuck(t *testing.T) {
	done := checkpointResult{logged: 10, copied: 10}
	stuck := checkpointResult{logged: 500, copied: 10}
	cases := []struct {
		name      string
		wait      time.Duration
		last, now checkpointResult
		want      time.Duration
	}{
		{"every frame copied", time.Second, done, done, checkpointEvery},
		{"progress past a reader", time.Second, checkpointResult{logged: 400, copied: 5}, stuck, checkpointEvery},
		{"nothing new copied", checkpointEvery, stuck, checkpointResult{logged: 600, copied: 10}, 2 * checkpointEvery},
		{"at the longest wait", checkpointMaxWait, stuck, stuck, checkpointMaxWait},
		{"the log started again", checkpointMaxWait, stuck, checkpointResult{logged: 40, copied: 10}, checkpointEvery},
		{"a failed attempt after success", checkpointEvery, done, checkpointResult{}, checkpointEvery},
	}
	for _, c := range cases {
		if got := nextCheckpointWait(c.wait, c.last, c.now); got != c.want {
			t.Errorf("%s: wait %s, want %s", c.name, got, c.want)
		}
	}
}

// openNotes opens Tables on a new database of one collection, notes.
func openNotes(t *testing.T) (*Tables, string) {
	t.Helper()
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
	t.Cleanup(func() { tables.Close() })
	return tables, path
}

// writeNotes writes n notes, prefix-0 and on, of 4,000 bytes: about a page each, so 600 are
// under SQLite's default threshold of 1,000 pages and far under the
// writer's, and only the checkpointer copies them.
func writeNotes(t *testing.T, tables *Tables, prefix string, n int) {
	t.Helper()
	body := strings.Repeat("x", 4000)
	for i := range n {
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("%s-%d", prefix, i)}, {Key: "body", Value: body}})
		if err != nil {
			t.Fatal(err)
		}
		if err := tables.Write(context.Background(), DocWrite{Coll: "notes", Doc: doc}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitForCheckpoint waits until the database file has grown by 2 MB from
// before: the notes' pages were copied into it.
func waitForCheckpoint(t *testing.T, path string, before int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for fileSize(t, path) < before+2_000_000 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes, %d before 2.4 MB of writes: the log was not checkpointed within %s", fileSize(t, path), before, within)
		}
		time.Sleep(50 * time.Millisecond)
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
