package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
)

// command runs a fieldcrm command in-process on dataDir, with the same
// configuration as the test's servers: fieldcrm's variables unset but the
// data dir. It returns what the command printed.
func command(dataDir string, args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), args, func(k string) string {
		if k == "FIELDCRM_DATA_DIR" {
			return dataDir
		}
		return ""
	}, &out, &out)
	return out.String(), err
}

// TestBackupWhileServingAndRestoreStartsANewSyncEpoch runs the default
// deployment (embedded SQLite, in-process Redis) as a process of its own,
// whatever engines the CI pass names, and backs it up while a phone pushes
// customers. The restore, into a new data dir, holds every push acknowledged
// before the backup began and none begun after it ended; the phone's cursor
// from before the restore answers 410 resync-required, its push with that
// cursor is accepted (blind), and a pull from null is complete; the source's
// tokens work and a national ID opens, as the generated JWT secret and data
// key came with the backup. Backup refuses a non-empty target; restore
// refuses a tampered backup, a data dir a server runs on, and a non-empty one
// without --force (with it, the old contents move aside). The commands are
// the ones docs/operations-backup.md shows.
func TestBackupWhileServingAndRestoreStartsANewSyncEpoch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server three times")
	}
	env := defaultDeploymentEnv()

	source := &replica{name: "source", dataDir: t.TempDir()}
	source.start(t, env)
	t.Cleanup(func() { source.kill(t) })
	email := "backup@default.test"
	signup(t, source, "Backup Ltd", email)
	p := newPhone(t, source, email, "backup-phone")
	p.pull(t, source)
	// A national ID, sealed with the data key the server generated in its
	// data dir: the restore must bring the key too, or the number is lost.
	const nationalID = "110101199003074514"
	sealed := source.must(t, 201, "POST", "/v1/customers", p.token, map[string]any{"name": "王伟", "kind": "person", "national_id": nationalID})["id"].(string)

	// A phone pushes batches of new customers until well after the backup,
	// and notes when each push began and when its answer came.
	type batch struct {
		ids        []string
		start, end time.Time
		acked      bool
	}
	var (
		mu      sync.Mutex
		batches []batch
		acked   int
		pushErr error
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			rows := make([]map[string]any, 5)
			b := batch{start: time.Now()}
			for k := range rows {
				rows[k] = newCustomerRow(fmt.Sprintf("b%04d-%d", n, k))
				b.ids = append(b.ids, rows[k]["id"].(string))
			}
			status, m := p.push(t, source, rows, nil, nil)
			b.end, b.acked = time.Now(), status == 200
			mu.Lock()
			batches = append(batches, b)
			if b.acked {
				acked += len(rows)
			} else {
				pushErr = fmt.Errorf("push %d: %d %v", n, status, m)
			}
			mu.Unlock()
			if !b.acked {
				return
			}
		}
	}()
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return acked
	}
	waitFor(t, "200 customers pushed", func() bool { return ackedCount() >= 200 })
	backupDir := filepath.Join(t.TempDir(), "backup")
	backupStart := time.Now()
	out, err := command(source.dataDir, "backup", "--to", backupDir)
	backupEnd := time.Now()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	afterBackup := ackedCount()
	waitFor(t, "pushes after the backup", func() bool { return ackedCount() >= afterBackup+25 })
	close(stop)
	<-done
	if pushErr != nil {
		t.Fatal(pushErr)
	}
	// Every customer sent is in one of three sets: acknowledged before the
	// backup began (must be restored), pushed after it ended (must not be),
	// or in a push that overlapped it (either).
	sent, ackedBefore, late := map[string]bool{}, map[string]bool{}, map[string]bool{}
	overlapping := 0
	for _, b := range batches {
		for _, id := range b.ids {
			sent[id] = true
			switch {
			case b.end.Before(backupStart):
				ackedBefore[id] = true
			case b.start.After(backupEnd):
				late[id] = true
			}
		}
		if b.start.Before(backupEnd) && b.end.After(backupStart) {
			overlapping++
		}
	}
	if overlapping == 0 {
		t.Fatal("no push overlapped the backup")
	}
	sent[sealed], ackedBefore[sealed] = true, true
	t.Logf("backup in %v while pushing: %d customers acknowledged before it, %d pushes overlapping it, %d customers in all\n%s",
		backupEnd.Sub(backupStart), len(ackedBefore), overlapping, len(sent), out)
	p.pull(t, source) // the phone's cursor is now past the backup's
	oldCursor := p.cursor

	if out, err := command(source.dataDir, "backup", "--to", backupDir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a second backup into the same directory: %v\n%s", err, out)
	}
	restored := t.TempDir()
	restoredAt := time.Now()
	if out, err := command(restored, "restore", "--from", backupDir); err != nil || !strings.Contains(out, "new sync epoch in 1 tenants") {
		t.Fatalf("restore into a new data dir: %v\n%s", err, out)
	}
	if out, err := command(source.dataDir, "restore", "--from", backupDir); !errors.Is(err, embedded.ErrDirInUse) {
		t.Fatalf("restore onto a running server: %v\n%s", err, out)
	}
	tampered := filepath.Join(t.TempDir(), "tampered")
	if err := os.CopyFS(tampered, os.DirFS(backupDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tampered, "ferretdb", "fieldcrm.sqlite"), []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	untouched := filepath.Join(t.TempDir(), "untouched")
	if out, err := command(untouched, "restore", "--from", tampered); err == nil || !strings.Contains(err.Error(), "does not match the manifest") {
		t.Fatalf("restore of a tampered backup: %v\n%s", err, out)
	}
	if _, err := os.Stat(untouched); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore created the data dir: %v", err)
	}

	// Onto the stopped source: refused as not empty, unless --force, which
	// moves the old contents aside.
	source.stop(t)
	if out, err := command(source.dataDir, "restore", "--from", backupDir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty data dir without --force: %v\n%s", err, out)
	}
	if out, err := command(source.dataDir, "restore", "--from", backupDir, "--force"); err != nil || !strings.Contains(out, "moved the data dir's previous contents to") {
		t.Fatalf("restore --force: %v\n%s", err, out)
	}
	aside, _ := filepath.Glob(filepath.Join(source.dataDir, "pre-restore-*", "ferretdb", "fieldcrm.sqlite"))
	if len(aside) != 1 {
		t.Fatalf("the old database was not kept aside: %v", aside)
	}

	target := &replica{name: "restored", dataDir: restored}
	target.start(t, env)
	t.Cleanup(func() { target.kill(t) })
	fresh := newPhone(t, target, email, "check-phone")
	fresh.pull(t, target)
	numbers := map[string]string{}
	for id, rec := range fresh.local {
		if !sent[id] {
			t.Fatalf("restored customer %s was never pushed", id)
		}
		if late[id] {
			t.Fatalf("customer %s, pushed after the backup ended, is in it", id)
		}
		if other, taken := numbers[rec["number"].(string)]; taken {
			t.Fatalf("customers %s and %s share the number %v", id, other, rec["number"])
		}
		numbers[rec["number"].(string)] = id
	}
	for id := range ackedBefore {
		if fresh.local[id] == nil {
			t.Fatalf("customer %s, acknowledged before the backup, is not restored (%d of %d there)", id, len(fresh.local), len(ackedBefore))
		}
	}

	// The source's tokens (signed with the JWT secret the backup carried)
	// still work, and the national ID opens with the data key it carried.
	if c := target.must(t, 200, "GET", "/v1/customers/"+sealed, p.token, nil); c["national_id"] != nationalID {
		t.Fatalf("the restored national ID reads %v", c["national_id"])
	}

	// The phone synced after the backup: its cursor answers 410, and the
	// edits it has not pushed yet are accepted with that cursor.
	status, m := target.call(t, "GET", "/v1/sync/pull?last_pulled_at="+oldCursor+"&schema_version=2&migration=null", p.token, nil)
	if status != 410 || m["type"] != "/problems/resync-required" {
		t.Fatalf("pull with the cursor from before the restore: %d %v", status, m)
	}
	var someID string
	for id := range ackedBefore {
		someID = id
		break
	}
	edited := map[string]any{"id": someID, "_status": "updated", "_changed": "region", "region": "after-restore"}
	status, m = p.push(t, target, []map[string]any{newCustomerRow("unpushed-1"), newCustomerRow("unpushed-2")}, []map[string]any{edited}, nil)
	if status != 200 {
		t.Fatalf("blind push with the cursor from before the restore: %d %v", status, m)
	}
	p.cursor, p.local = "null", map[string]map[string]any{}
	p.pull(t, target)
	if len(p.local) != len(fresh.local)+2 || p.local["unpushed-1"] == nil || p.local["unpushed-2"] == nil || p.local[someID]["region"] != "after-restore" {
		t.Fatalf("pull from null after the blind push: %d customers (%d before it), unpushed-1 %v, %s %v",
			len(p.local), len(fresh.local), p.local["unpushed-1"], someID, p.local[someID])
	}
	// The new epoch is the restore's time in microseconds (see
	// store.AdvanceSyncEpoch).
	if after := mustInt(t, p.cursor); after < restoredAt.UnixMicro() || after <= mustInt(t, oldCursor) {
		t.Fatalf("cursor after the restore %d, before %s: want the new epoch, at least %d", after, oldCursor, restoredAt.UnixMicro())
	}
	p.pull(t, target) // the new cursor is good

	// advance-sync-epoch (for restores done by other means) refuses a data
	// dir a server runs on, and moves the epoch again once it is stopped.
	if out, err := command(restored, "advance-sync-epoch"); !errors.Is(err, embedded.ErrDirInUse) {
		t.Fatalf("advance-sync-epoch with the server running: %v\n%s", err, out)
	}
	target.stop(t)
	if out, err := command(restored, "advance-sync-epoch"); err != nil || !strings.Contains(out, "new sync epoch in 1 tenants") {
		t.Fatalf("advance-sync-epoch: %v\n%s", err, out)
	}
	target.start(t, env)
	if status, m := target.call(t, "GET", "/v1/sync/pull?last_pulled_at="+p.cursor+"&schema_version=2&migration=null", p.token, nil); status != 410 {
		t.Fatalf("pull after advance-sync-epoch: %d %v", status, m)
	}
}

// TestRestoringABackupAgainStartsAnotherSyncEpoch restores one backup twice
// onto the same data dir: a phone syncs (and pushes) on the first restore,
// the backup is restored again with --force, and new writes pass the
// phone's cursor. Its cursor belongs to the first restore's lineage, which
// handed out numbers the second one hands out again for other changes: its
// pull answers 410, not a page that skips what was written under those
// numbers, and after the documented flow (a blind push with that cursor,
// then a pull from null) it holds everything the server has, its unpushed
// edits among it.
func TestRestoringABackupAgainStartsAnotherSyncEpoch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server three times")
	}
	env := defaultDeploymentEnv()
	source := &replica{name: "source", dataDir: t.TempDir()}
	source.start(t, env)
	t.Cleanup(func() { source.kill(t) })
	email := "again@default.test"
	admin := signup(t, source, "Again Ltd", email)["access_token"].(string)
	for i := range 10 {
		source.must(t, 201, "POST", "/v1/customers", admin, map[string]any{"name": fmt.Sprintf("Backed up %d", i), "kind": "company"})
	}
	// The phone signs in before the backup: its session is in it.
	p := newPhone(t, source, email, "again-phone")
	backupDir := filepath.Join(t.TempDir(), "backup")
	if out, err := command(source.dataDir, "backup", "--to", backupDir); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	source.stop(t)

	dataDir := t.TempDir()
	if out, err := command(dataDir, "restore", "--from", backupDir); err != nil {
		t.Fatalf("first restore: %v\n%s", err, out)
	}
	first := &replica{name: "first restore", dataDir: dataDir}
	first.start(t, env)
	t.Cleanup(func() { first.kill(t) })
	p.pull(t, first)
	if status, m := p.push(t, first, []map[string]any{newCustomerRow("first-lineage")}, nil, nil); status != 200 {
		t.Fatalf("push on the first restore: %d %v", status, m)
	}
	p.pull(t, first)
	cursor := p.cursor
	first.stop(t)

	if out, err := command(dataDir, "restore", "--from", backupDir, "--force"); err != nil {
		t.Fatalf("second restore: %v\n%s", err, out)
	}
	second := &replica{name: "second restore", dataDir: dataDir}
	second.start(t, env)
	t.Cleanup(func() { second.kill(t) })
	// Another device writes 20 customers: the server's changes pass the
	// phone's cursor.
	for i := range 20 {
		second.must(t, 201, "POST", "/v1/customers", admin, map[string]any{"name": fmt.Sprintf("After %d", i), "kind": "company"})
	}
	probe := newPhone(t, second, email, "again-probe")
	probe.pull(t, second)
	if mustInt(t, probe.cursor) <= mustInt(t, cursor) {
		t.Fatalf("the server's changes (%s) are not past the phone's cursor %s", probe.cursor, cursor)
	}

	status, m := second.call(t, "GET", "/v1/sync/pull?last_pulled_at="+cursor+"&schema_version=2&migration=null", p.token, nil)
	if status != 410 || m["type"] != "/problems/resync-required" {
		customers, _ := m["changes"].(map[string]any)["customers"].(map[string]any)
		created, _ := customers["created"].([]any)
		t.Fatalf("pull with a cursor of the first restore after the second: %d %v with %d of the 20 new customers, want 410 resync-required",
			status, m["type"], len(created))
	}
	// The documented flow: push what is unpushed with the old cursor, reset,
	// pull from null.
	if status, m := p.push(t, second, []map[string]any{newCustomerRow("unpushed")}, nil, nil); status != 200 {
		t.Fatalf("blind push with the cursor of the first restore: %d %v", status, m)
	}
	p.cursor, p.local = "null", map[string]map[string]any{}
	p.pull(t, second)
	fresh := newPhone(t, second, email, "again-check")
	fresh.pull(t, second)
	if p.local["unpushed"] == nil {
		t.Fatal("the edit pushed blind is not on the phone after its pull from null")
	}
	if len(p.local) != len(fresh.local) || len(fresh.local) < 10+20+1 {
		t.Fatalf("the phone holds %d customers after its pull from null, the server %d (want at least 31)", len(p.local), len(fresh.local))
	}
	for id := range fresh.local {
		if p.local[id] == nil {
			t.Fatalf("customer %s is on the server, not on the phone", id)
		}
	}
}

// mustInt parses a cursor.
func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("cursor %q: %v", s, err)
	}
	return n
}

// A manifest names only files a backup writes, so restoring cannot write
// outside the data dir or over anything else in it.
func TestRestoreAcceptsOnlyTheFilesABackupWrites(t *testing.T) {
	for p, want := range map[string]bool{
		"ferretdb/fieldcrm.sqlite": true, "ferretdb/other.sqlite": true, "jwt-secret": true, "data-key": true,
		"ferretdb/../jwt-secret": false, "ferretdb/.sqlite": false, "ferretdb/x/y.sqlite": false, "../data-key": false,
		"/etc/passwd": false, "ferretdb/fieldcrm.sqlite-wal": false, "fieldcrm.lock": false, "manifest.json": false, "": false,
	} {
		if got := restorable(p); got != want {
			t.Errorf("restorable(%q) = %v, want %v", p, got, want)
		}
	}
}
