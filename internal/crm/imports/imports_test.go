package imports

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/redis/counter"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/cursor"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// newRunner returns a Runner over a CRM with a tenant of its own, its
// files kept under the test's temporary directory.
func newRunner(t *testing.T) (*Runner, *crm.Service, *store.Store, models.Actor) {
	t.Helper()
	ctx := context.Background()
	st := env.Store(t)
	rd := env.Redis(t)
	tenant := models.Tenant{ID: models.NewID(), Name: "Imports", CreatedAt: time.Now().UTC()}
	if err := st.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	sealer, _ := crm.NewSealer(bytes.Repeat([]byte{7}, 32))
	svc, err := crm.New(crm.Options{Store: st, Counters: counter.New(rd.Client, rd.Prefix), Sealer: sealer,
		Sequencer: cursor.New(rd.Client, rd.Prefix+"sync:", 0, nil, st), Logger: testenv.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r := New(svc, testenv.DiscardLogger())
	r.tempDir = t.TempDir()
	return r, svc, st, models.Actor{UserID: "admin", TenantID: tenant.ID, Role: models.RoleAdmin}
}

func TestAnImportRunsInTheBackgroundAndCountsEveryRow(t *testing.T) {
	r, svc, _, admin := newRunner(t)
	ctx := context.Background()
	csv := "客户名称,手机\n远景贸易,13800138000\n,13900139000\n张伟,13800138000\n李娜,13700137000\n"
	var saves int
	job, err := r.Start(ctx, Request{Actor: admin, OnDuplicate: crm.OnDuplicateSkip, FileName: "customers.csv",
		Progress: func(models.Import) { saves++ }}, strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if rec := job.Record(); rec.State != models.ImportRunning || rec.Total == 0 || rec.Done != 0 {
		t.Fatalf("the started record: state %s, total %d, done %d", rec.State, rec.Total, rec.Done)
	}
	final, err := job.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != models.ImportDone || final.Done != 4 || final.Created != 2 || final.Skipped != 1 || final.Failed != 1 {
		t.Fatalf("final record: state %s, done %d, created %d, skipped %d, failed %d; want done 4: 2 created, 1 skipped, 1 failed",
			final.State, final.Done, final.Created, final.Skipped, final.Failed)
	}
	if saves == 0 {
		t.Fatal("Progress never heard of the import's record")
	}
	assertNoFilesLeft(t, r)
	stored, err := svc.Import(ctx, admin, final.ID)
	if err != nil || stored.State != models.ImportDone || stored.Created != 2 {
		t.Fatalf("the stored record: %+v, %v", stored, err)
	}
	failures, err := svc.ImportFailures(ctx, admin, final.ID, "", 10)
	if err != nil || len(failures) != 1 || failures[0].Line != 3 || failures[0].Column != "客户名称" {
		t.Fatalf("failures %+v, %v; want line 3, column 客户名称", failures, err)
	}
}

func TestAFileThatCannotBeImportedIsRefusedAndNothingIsRecorded(t *testing.T) {
	r, _, st, admin := newRunner(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		req  Request
		file string
	}{
		"not a spreadsheet": {Request{Actor: admin, OnDuplicate: crm.OnDuplicateSkip, FileName: "notes.txt"}, "hello"},
		"no name column":    {Request{Actor: admin, OnDuplicate: crm.OnDuplicateSkip, FileName: "c.csv"}, "phone\n13800138000\n"},
		"empty":             {Request{Actor: admin, OnDuplicate: crm.OnDuplicateSkip, FileName: "c.csv"}, ""},
		"unknown kind":      {Request{Actor: admin, OnDuplicate: crm.OnDuplicateSkip, Kind: "invoices", FileName: "c.csv"}, "name\nx\n"},
		"unknown choice":    {Request{Actor: admin, OnDuplicate: "replace", FileName: "c.csv"}, "name\nx\n"},
	} {
		_, err := r.Start(ctx, tc.req, strings.NewReader(tc.file))
		var ve *models.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v; want a validation error", name, err)
		}
	}
	assertNoFilesLeft(t, r)
	running, err := st.RunningImports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range running {
		if im.TenantID == admin.TenantID {
			t.Fatalf("a refused file left an import recorded: %+v", im)
		}
	}
}

// assertNoFilesLeft checks that the copies of imported files are gone.
func assertNoFilesLeft(t *testing.T, r *Runner) {
	t.Helper()
	left, err := os.ReadDir(r.tempDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("%d copies of imported files left in %s", len(left), r.tempDir)
	}
}

// finishWatcher is the CRM, noting what the import's stored record said
// while the CRM was refreshing after it.
type finishWatcher struct {
	*crm.Service
	admin   models.Actor
	stateAt []string
}

func (w *finishWatcher) ImportFinished(ctx context.Context, im models.Import) error {
	stored, err := w.Import(ctx, w.admin, im.ID)
	if err != nil {
		return err
	}
	w.stateAt = append(w.stateAt, stored.State)
	return w.Service.ImportFinished(ctx, im)
}

// TestAnImportSaysDoneOnlyAfterItsRefresh: a client polls the record until it
// says done and then reads customers (an app's sync, a manager's report); the
// RFM tiers the import changes must be in by then, not written under them.
func TestAnImportSaysDoneOnlyAfterItsRefresh(t *testing.T) {
	_, svc, _, admin := newRunner(t)
	w := &finishWatcher{Service: svc, admin: admin}
	r := New(w, testenv.DiscardLogger())
	r.tempDir = t.TempDir()
	ctx := context.Background()
	job, err := r.Start(ctx, Request{Actor: admin, OnDuplicate: crm.OnDuplicateSkip, FileName: "customers.csv"},
		strings.NewReader("客户名称,手机\n远景贸易,13800138000\n"))
	if err != nil {
		t.Fatal(err)
	}
	final, err := job.Wait(ctx)
	if err != nil || final.State != models.ImportDone {
		t.Fatalf("final %+v, %v", final, err)
	}
	if len(w.stateAt) != 1 || w.stateAt[0] != models.ImportRunning {
		t.Fatalf("the stored record said %q while the CRM refreshed after the import; want one refresh, while it said %q",
			w.stateAt, models.ImportRunning)
	}
}
