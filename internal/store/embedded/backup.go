package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SQLiteFiles returns the names of the database files FerretDB keeps in
// sqliteDir: one <database>.sqlite per MongoDB database, each holding its
// collections' tables and FerretDB's catalogue of them
// (_ferretdb_collections). The -wal and -shm files next to them are SQLite's
// write-ahead log and its index, part of the live database, never copied
// alone.
func SQLiteFiles(sqliteDir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(sqliteDir, "*.sqlite"))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names, nil
}

// SnapshotSQLite writes a consistent copy of database file src to dst (which
// must not exist) while other processes may be writing to src.
//
// Why VACUUM INTO and not a file copy: FerretDB runs SQLite in WAL mode, so
// committed transactions live in src-wal until a checkpoint moves them into
// src, and a copy of the two files taken while the server writes mixes pages
// of different moments. VACUUM INTO reads inside one read transaction, which
// in WAL mode sees exactly the transactions committed when it began and
// blocks no writer (nor the checkpointer, which only stops short of the
// pages this reader still needs). The copy is a compact database with every
// table and index (fieldcrm's own expression indexes included), and a
// quick_check of it must pass.
func SnapshotSQLite(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot %s: %s exists already", src, dst)
	}
	// mode=ro: the backup never writes to the live database. A read-only
	// connection to a WAL database still joins its shared-memory index, so it
	// sees what the server committed, including what is still in the log.
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode of %s: %w", src, err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		_ = os.Remove(dst)
		return fmt.Errorf("VACUUM INTO %s (source journal mode %s): %w", dst, mode, err)
	}
	// SQLite does not sync what VACUUM INTO writes.
	if err := syncFile(dst); err != nil {
		return err
	}
	return checkSQLite(ctx, dst)
}

// syncFile makes path private to its owner, like the data dir's files, and
// flushes it to disk.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// checkSQLite runs SQLite's quick_check on the database file path.
func checkSQLite(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check %s: %w", path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("check %s: %s", path, strings.Join(problems, "; "))
	}
	return nil
}
