package embedded

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
)

// A snapshot taken while another connection commits in WAL mode holds every
// row committed before it began, never a torn transaction, and the log's
// rows not yet checkpointed too.
func TestSnapshotSQLiteIsConsistentWhileWritesGoOn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "live.sqlite")
	w, err := sql.Open("sqlite", "file:"+src+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.ExecContext(ctx, `CREATE TABLE pairs (n INTEGER, half INTEGER)`); err != nil {
		t.Fatal(err)
	}
	// Each transaction writes two rows; a torn copy would hold an odd count.
	write := func(n int) {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			t.Error(err)
			return
		}
		for half := range 2 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO pairs VALUES (?, ?)`, n, half); err != nil {
				t.Error(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Error(err)
		}
	}
	for n := range 100 {
		write(n)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 100; ; n++ {
			select {
			case <-stop:
				return
			default:
				write(n)
			}
		}
	}()
	dst := filepath.Join(t.TempDir(), "copy.sqlite")
	err = SnapshotSQLite(ctx, src, dst)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	c, err := sql.Open("sqlite", "file:"+dst+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var rows, distinct int
	if err := c.QueryRow(`SELECT count(*), count(DISTINCT n) FROM pairs`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if distinct < 100 || rows != 2*distinct {
		t.Fatalf("snapshot holds %d rows of %d transactions: want both rows of each, and the first 100", rows, distinct)
	}
	if err := SnapshotSQLite(ctx, src, dst); err == nil {
		t.Fatal("a snapshot overwrote an existing file")
	}
}

// The data directory lock excludes a second holder, in this process too,
// and a lock file left behind by a holder that is gone does not block.
func TestLockDirExcludesASecondHolder(t *testing.T) {
	dir := t.TempDir()
	first, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrDirInUse) {
		t.Fatalf("second lock: %v, want ErrDirInUse", err)
	}
	first.Release()
	again, err := LockDir(dir) // the file is still there, unlocked
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Release()
}
