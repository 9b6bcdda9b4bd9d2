package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
)

// Backups of the embedded SQLite engine (docs/operations-backup.md).
//
// A backup is a directory: ferretdb/<database>.sqlite (one consistent copy
// per FerretDB database, see embedded.SnapshotSQLite), the generated
// jwt-secret and data-key when the data dir holds them, and manifest.json,
// written last, so a directory without it is not a backup.

// manifestName is the manifest's file in a backup.
const manifestName = "manifest.json"

// backupFormat is the version of the backup's layout and manifest.
const backupFormat = 1

// backupDocs is where an operator reads how to back up and restore.
const backupDocs = "docs/operations-backup.md"

// manifest describes a backup: what it holds and where it comes from.
type manifest struct {
	Format int `json:"format"`
	// CreatedAt is when the backup began: it holds every commit before.
	CreatedAt     time.Time    `json:"created_at"`
	Version       string       `json:"fieldcrm_version"`
	SourceDataDir string       `json:"source_data_dir"`
	Files         []backupFile `json:"files"`
}

// backupFile is one file of a backup. Path is relative, with slashes, and
// the same in the backup and in the data dir it restores.
type backupFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// embeddedOnly refuses what backup and restore cannot do: they copy the
// embedded SQLite engine, not a database server.
func embeddedOnly(command string, cfg serveConfig) error {
	switch {
	case cfg.MongoURI != "":
		return fmt.Errorf("%s: MONGODB_URI is set: back up MongoDB with mongodump --oplog and restore with mongorestore --oplogReplay, then run fieldcrm advance-sync-epoch before starting the servers (see %s)", command, backupDocs)
	case cfg.FerretPostgreSQLURL != "":
		return fmt.Errorf("%s: FERRETDB_POSTGRESQL_URL is set: back up that PostgreSQL database with pg_dump and restore it with pg_restore, then run fieldcrm advance-sync-epoch before starting the servers (see %s)", command, backupDocs)
	}
	return nil
}

// backupCommand runs `fieldcrm backup --to DIR`: an online backup of the
// embedded SQLite engine, safe while serve runs on the data dir.
func backupCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig(getenv, stderr)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: fieldcrm backup --to DIR\n\nCopies the embedded SQLite engine of the data dir consistently, also while serve\nruns, with the generated secrets and a manifest, into the new directory DIR.\nSee %s.\n\nFlags:\n", backupDocs)
		fs.PrintDefaults()
	}
	to := fs.String("to", "", "new or empty directory to write the backup to (required)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory to back up (FIELDCRM_DATA_DIR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *to == "" || fs.NArg() > 0 {
		return usageError{"backup: want --to DIR and no arguments"}
	}
	if err := embeddedOnly("backup", cfg); err != nil {
		return err
	}
	m, err := backup(ctx, cfg.DataDir, *to)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	for _, f := range m.Files {
		fmt.Fprintf(stdout, "%s\t%d bytes\tsha256 %s\n", f.Path, f.Size, f.SHA256)
	}
	fmt.Fprintf(stdout, "backup of %s written to %s at %s\n", m.SourceDataDir, *to, m.CreatedAt.Format(time.RFC3339))
	for _, s := range []struct{ name, env, file, why string }{
		{jwtSecretName, cfg.JWTSecret, cfg.JWTSecretFile, "without it every user signs in again"},
		{dataKeyName, cfg.DataKey, cfg.DataKeyFile, "without it national ID numbers cannot be read"},
	} {
		if s.env != "" || s.file != "" {
			fmt.Fprintf(stdout, "note: the %s comes from the environment or its own file, so it is not in this backup; keep it with the backup (%s)\n", s.name, s.why)
		}
	}
	return nil
}

// backup writes a backup of data dir dataDir into to, which must not exist
// or be empty, and returns its manifest.
func backup(ctx context.Context, dataDir, to string) (manifest, error) {
	src, err := filepath.Abs(dataDir)
	if err != nil {
		return manifest{}, err
	}
	dst, err := filepath.Abs(to)
	if err != nil {
		return manifest{}, err
	}
	if within(dst, src) {
		return manifest{}, fmt.Errorf("%s is inside the data dir %s: keep backups elsewhere", dst, src)
	}
	names, err := embedded.SQLiteFiles(app.SQLiteDir(src))
	if err != nil {
		return manifest{}, err
	}
	if len(names) == 0 {
		return manifest{}, fmt.Errorf("no database in %s: is the data dir (FIELDCRM_DATA_DIR) right?", app.SQLiteDir(src))
	}
	if err := makeEmptyDir(dst); err != nil {
		return manifest{}, fmt.Errorf("%w: back up into a new directory", err)
	}
	if err := os.Mkdir(app.SQLiteDir(dst), 0o700); err != nil {
		return manifest{}, err
	}
	m := manifest{Format: backupFormat, CreatedAt: time.Now().UTC(), Version: version, SourceDataDir: src}
	for _, name := range names {
		if err := embedded.SnapshotSQLite(ctx, filepath.Join(app.SQLiteDir(src), name), filepath.Join(app.SQLiteDir(dst), name)); err != nil {
			return manifest{}, err
		}
		m.Files = append(m.Files, backupFile{Path: "ferretdb/" + name})
	}
	for _, name := range []string{jwtSecretName, dataKeyName} {
		err := copyFile(filepath.Join(src, name), filepath.Join(dst, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // configured from the environment or a file elsewhere
		}
		if err != nil {
			return manifest{}, err
		}
		m.Files = append(m.Files, backupFile{Path: name})
	}
	for i, f := range m.Files {
		if m.Files[i].Size, m.Files[i].SHA256, err = hashFile(filepath.Join(dst, filepath.FromSlash(f.Path))); err != nil {
			return manifest{}, err
		}
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return manifest{}, err
	}
	// The manifest last: a backup cut short has none, and restore refuses it.
	if err := writeFileSynced(filepath.Join(dst, manifestName), append(raw, '\n')); err != nil {
		return manifest{}, err
	}
	return m, syncDirs(app.SQLiteDir(dst), dst)
}

// restoreCommand runs `fieldcrm restore --from DIR`: it checks the backup,
// puts it in the configured data dir (which no process may be using), and
// starts a new sync epoch, so devices resync instead of trusting cursors the
// restored database never issued.
func restoreCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig(getenv, stderr)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: fieldcrm restore --from DIR [--force]\n\nRestores a backup made by fieldcrm backup into the data dir, with no server\nrunning on it, and starts a new sync epoch. See %s.\n\nFlags:\n", backupDocs)
		fs.PrintDefaults()
	}
	from := fs.String("from", "", "directory of the backup (required)")
	force := fs.Bool("force", false, "restore into a data dir that is not empty, moving its contents aside into a pre-restore-<time> folder inside it (nothing is deleted)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory to restore into (FIELDCRM_DATA_DIR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
		return usageError{"restore: want --from DIR and no arguments"}
	}
	if err := embeddedOnly("restore", cfg); err != nil {
		return err
	}
	if err := restore(ctx, cfg, *from, *force, stdout); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

func restore(ctx context.Context, cfg serveConfig, from string, force bool, stdout io.Writer) error {
	src, err := filepath.Abs(from)
	if err != nil {
		return err
	}
	dst, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if within(src, dst) || within(dst, src) {
		return fmt.Errorf("the backup %s and the data dir %s overlap", src, dst)
	}
	m, err := checkBackup(src)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(m.Files, func(f backupFile) bool { return f.Path == "ferretdb/"+cfg.MongoDatabase+".sqlite" }) {
		return fmt.Errorf("the backup has no database %q (MONGODB_DATABASE); it has %s", cfg.MongoDatabase, filesIn(m))
	}
	// Held until the end: no server may start on a half-restored directory,
	// nor before the sync epoch has moved.
	lock, err := embedded.LockDir(dst)
	if errors.Is(err, embedded.ErrDirInUse) {
		return fmt.Errorf("%w; stop it before restoring", err)
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	aside, err := moveAside(dst, force)
	if err != nil {
		return err
	}
	if aside != "" {
		fmt.Fprintf(stdout, "moved the data dir's previous contents to %s (delete it yourself once the restore is good)\n", aside)
	}
	if err := os.Mkdir(app.SQLiteDir(dst), 0o700); err != nil {
		return err
	}
	for _, f := range m.Files {
		if err := copyChecked(filepath.Join(src, filepath.FromSlash(f.Path)), filepath.Join(dst, filepath.FromSlash(f.Path)), f); err != nil {
			return fmt.Errorf("%w (the data dir %s is incomplete: run restore again with --force)", err, dst)
		}
	}
	if err := syncDirs(app.SQLiteDir(dst), dst); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s from %s (a backup of %s made at %s by fieldcrm %s) into %s\n",
		filesIn(m), src, m.SourceDataDir, m.CreatedAt.Format(time.RFC3339), m.Version, dst)

	cfg.DataDir, cfg.dataDirLocked = dst, true
	tenants, err := advanceSyncEpoch(ctx, cfg)
	if err != nil {
		return fmt.Errorf("the files are restored, but the sync epoch did not move: run fieldcrm advance-sync-epoch before starting the server: %w", err)
	}
	fmt.Fprintf(stdout, "new sync epoch in %d tenants: devices that synced after the backup are told to resync (410), and their unsynced edits are kept\n", tenants)
	return nil
}

// advanceSyncEpochCommand runs `fieldcrm advance-sync-epoch`, after a
// database was restored by other means (mongorestore, pg_restore) and before
// any server starts on it.
func advanceSyncEpochCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig(getenv, stderr)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("advance-sync-epoch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: fieldcrm advance-sync-epoch\n\nAfter a database restore (mongorestore, pg_restore), and before servers start\non it: moves every tenant's sync numbers past anything devices may hold, so\nthey resync and keep their unsynced edits. Uses MONGODB_URI or the embedded\nengine as serve does. See %s.\n", backupDocs)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"advance-sync-epoch takes no arguments"}
	}
	tenants, err := advanceSyncEpoch(ctx, cfg)
	if err != nil {
		return fmt.Errorf("advance-sync-epoch: %w", err)
	}
	fmt.Fprintf(stdout, "new sync epoch in %d tenants: devices that synced after the backup are told to resync (410), and their unsynced edits are kept\n", tenants)
	return nil
}

// advanceSyncEpoch opens the database as serve does and starts a new sync
// epoch in every tenant (store.AdvanceSyncEpoch), from the wall clock.
func advanceSyncEpoch(ctx context.Context, cfg serveConfig) (int, error) {
	st, closeStore, err := app.OpenStorage(ctx, cfg.storage(), newLogger(cfg, io.Discard))
	defer closeStore(ctx)
	if err != nil {
		return 0, err
	}
	return st.AdvanceSyncEpoch(ctx, time.Now())
}

// checkBackup reads the manifest of the backup in dir and checks every file
// it names against its size and SHA-256.
func checkBackup(dir string) (manifest, error) {
	var m manifest
	raw, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return m, fmt.Errorf("%s is not a complete backup: %w", dir, err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("%s: %w", manifestName, err)
	}
	if m.Format != backupFormat {
		return m, fmt.Errorf("%s: format %d, this fieldcrm reads %d", manifestName, m.Format, backupFormat)
	}
	for _, f := range m.Files {
		if !restorable(f.Path) {
			return m, fmt.Errorf("%s names %q, which is not a file of a data dir", manifestName, f.Path)
		}
		size, sum, err := hashFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return m, err
		}
		if size != f.Size || sum != f.SHA256 {
			return m, fmt.Errorf("%s does not match the manifest (%d bytes, SHA-256 %s; the manifest says %d bytes, %s): the backup is damaged or was changed", f.Path, size, sum, f.Size, f.SHA256)
		}
	}
	return m, nil
}

// restorable says whether a manifest path is one a backup writes, so a
// manifest cannot make restore write anywhere else.
func restorable(p string) bool {
	if p == jwtSecretName || p == dataKeyName {
		return true
	}
	name, ok := strings.CutPrefix(p, "ferretdb/")
	return ok && path.Ext(name) == ".sqlite" && name != ".sqlite" && !strings.ContainsAny(name, `/\`) && filepath.IsLocal(name)
}

// moveAside makes data dir dir ready to receive a restore: empty but for its
// lock file. When it holds more and force is set, that moves into a new
// folder inside it (a rename, on the same file system even when dir is a
// mount point), whose path it returns.
func moveAside(dir string, force bool) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		if e.Name() != embedded.LockFileName {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	if !force {
		return "", fmt.Errorf("the data dir %s is not empty (%s): restore into an empty one, or add --force to move its contents aside into a folder inside it", dir, strings.Join(names, ", "))
	}
	aside := filepath.Join(dir, "pre-restore-"+time.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.Mkdir(aside, 0o700); err != nil {
		return "", err
	}
	for _, name := range names {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name)); err != nil {
			return "", fmt.Errorf("move %s aside: %w", name, err)
		}
	}
	return aside, syncDirs(aside, dir)
}

// makeEmptyDir creates dir, or accepts it when it exists and is empty.
func makeEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty", dir)
	}
	return nil
}

// copyFile copies src to the new file dst (mode 0600) and syncs it.
func copyFile(src, dst string) error {
	return copyChecked(src, dst, backupFile{})
}

// copyChecked copies src to the new file dst (mode 0600) and syncs it; when
// want has a hash, the bytes copied must match it, or dst is removed.
func copyChecked(src, dst string, want backupFile) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); want.SHA256 != "" && (sum != want.SHA256 || n != want.Size) {
		return fmt.Errorf("%s changed while it was restored: %d bytes, SHA-256 %s, want %s", src, n, sum, want.SHA256)
	}
	return out.Sync()
}

// hashFile returns the size and the hex SHA-256 of a file.
func hashFile(name string) (int64, string, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", name, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeFileSynced writes a new file (mode 0600) and syncs it.
func writeFileSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDirs syncs directories, so the files created or renamed in them
// survive a power loss.
func syncDirs(dirs ...string) error {
	for _, dir := range dirs {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return nil
}

// within says whether path p is dir or inside it (both absolute and clean).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

func filesIn(m manifest) string {
	paths := make([]string, len(m.Files))
	for i, f := range m.Files {
		paths[i] = f.Path
	}
	return strings.Join(paths, ", ")
}
