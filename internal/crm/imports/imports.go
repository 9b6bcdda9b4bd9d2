// Package imports runs spreadsheet imports of customers and their records:
// the one way an import starts, whether a file was uploaded to POST
// /v1/imports or named to the fieldcrm import command. Start keeps its own
// copy of the file, reads its header (a file that cannot be imported at all is
// refused there, before anything is recorded), records the import and runs it
// in the background; the caller answers at once (the API's 202) or waits for
// it (the command's progress bar). Rows go through the CRM's ordinary rules
// (crm.Service.ImportCustomers, crm.RecordImport); the record of the import,
// its progress and its failed and skipped rows are kept in the database, where
// every replica can answer for it.
package imports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/models"
)

// Timeout bounds one import's run: a file of a million rows takes well under
// an hour; a run still going after six is stuck, and its record says failed.
const Timeout = 6 * time.Hour

// CRM is what an import needs of the CRM (crm.Service): the rows' rules, and
// a place for the import's record, its failed rows and the rows it skipped or
// merged as duplicates, where GET /v1/imports/{id} finds them.
type CRM interface {
	Settings(ctx context.Context, a models.Actor) (models.Settings, error)
	// ImportCustomers imports rows under their ids, up to parallel at once,
	// with the outcomes of importing them one after another.
	ImportCustomers(ctx context.Context, a models.Actor, ids []string, rows []models.Customer, onDuplicate string, dryRun bool, parallel int) ([]crm.RowOutcome, []error)
	StartRecordImport(ctx context.Context, a models.Actor) (*crm.RecordImport, error)
	// ImportFinished hears of an import's end (the CRM then refreshes what
	// depends on customers and orders, RFM tiers).
	ImportFinished(ctx context.Context, im models.Import) error
	SaveImport(ctx context.Context, im models.Import) error
	AddImportFailures(ctx context.Context, importID string, f []models.ImportFailure) error
	// AddSkippedRows stores a page of skipped rows as page number page;
	// pages are numbered from 1, one after the other, in line order.
	AddSkippedRows(ctx context.Context, importID string, page int, rows []models.SkippedRow) error
}

// Runner starts imports.
type Runner struct {
	crm CRM
	log *slog.Logger
	now func() time.Time
	// Metrics hears of imports starting and ending, and of their rows (New's
	// reports to no one); set it before Start.
	Metrics Metrics
	// tempDir is where files are kept while their import runs ("" is the
	// system's).
	tempDir string
}

// New returns a Runner importing through svc, logging each import's end to
// log.
func New(svc CRM, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{crm: svc, log: log, now: func() time.Time { return time.Now().UTC() }, Metrics: noMetrics{}}
}

// Metrics hears what imports do, for an operator (package telemetry
// implements it).
type Metrics interface {
	// ImportStarted says an import runs; it calls ended when it stops.
	ImportStarted() (ended func())
	// RowsImported says n more rows of an import of kind were handled
	// (created, merged, skipped or failed); dry runs are not told.
	RowsImported(kind string, n int)
}

type noMetrics struct{}

func (noMetrics) ImportStarted() func()    { return func() {} }
func (noMetrics) RowsImported(string, int) {}

// Request is what one import is asked to do.
type Request struct {
	// Actor imports: they own what is created, and their rights decide
	// what may be merged into.
	Actor models.Actor
	// Kind is what the file holds: one of crm.ImportKinds ("" is customers).
	Kind string
	// OnDuplicate is what a customer row matching an existing customer does:
	// crm.OnDuplicateSkip, Merge or Flag.
	OnDuplicate string
	// DryRun reports what would happen and writes nothing.
	DryRun  bool
	Mapping sheets.Mapping
	// FileName is the file's name as the user gave it; its extension (.csv
	// or .xlsx) says its format.
	FileName string
	// Progress, when set, hears of the import's record each time its
	// progress is saved (a progress bar).
	Progress func(models.Import)
}

// Job is an import that has started.
type Job struct {
	record models.Import
	cancel context.CancelFunc
	done   chan struct{}
	final  models.Import
	err    error
}

// Record is the import's record as it started (state running, counts 0).
func (j *Job) Record() models.Import { return j.record }

// Wait returns the import's final record once its run has ended, and the
// error that ended it, if any (crm.ErrStopping when the server stopped it).
// If ctx ends first, the import is stopped and Wait returns once it has.
func (j *Job) Wait(ctx context.Context) (models.Import, error) {
	select {
	case <-j.done:
	case <-ctx.Done():
		j.cancel()
		<-j.done
	}
	return j.final, j.err
}

// Start reads file into the import's own copy, checks its header against
// the request, records the import and runs it in the background, detached
// from ctx's cancellation (an HTTP request ends long before its import). A
// request or file that cannot be imported is refused with a
// models.ValidationError, and nothing is recorded.
func (r *Runner) Start(ctx context.Context, req Request, file io.Reader) (*Job, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	st, err := r.crm.Settings(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.tempDir, "fieldcrm-import-*")
	if err != nil {
		return nil, fmt.Errorf("import %s: keep the file: %w", req.FileName, err)
	}
	started := false
	defer func() {
		if !started { // a refused file goes now; a running import's when it ends
			os.RemoveAll(dir)
		}
	}()
	path := filepath.Join(dir, "upload")
	if err := copyFile(path, file); err != nil {
		return nil, fmt.Errorf("import %s: keep the file: %w", req.FileName, err)
	}
	sheet, err := sheets.Open(path, req.FileName, req.kind(), req.Mapping, st.CustomFields)
	if err != nil {
		return nil, err
	}
	rows := r.Metrics.RowsImported
	if req.DryRun {
		rows = noMetrics{}.RowsImported
	}
	run := &run{crm: r.crm, sink: progressSink{CRM: r.crm, progress: req.Progress}, sheet: sheet, req: req, settings: st, now: r.now, rowsDone: rows}
	record := run.newRecord(req.FileName)
	if err := r.crm.SaveImport(ctx, record); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Timeout)
	j := &Job{record: record, cancel: cancel, done: make(chan struct{})}
	started = true
	ended := r.Metrics.ImportStarted()
	go func() {
		defer close(j.done)
		defer ended()
		defer cancel()
		defer os.RemoveAll(dir)
		j.final, j.err = run.all(runCtx, record)
		r.logEnd(runCtx, j.final, j.err)
	}()
	return j, nil
}

func (r *Runner) logEnd(ctx context.Context, job models.Import, err error) {
	log := r.log.With("import", job.ID, "tenant", job.TenantID, "user", job.UserID)
	switch {
	case errors.Is(err, crm.ErrStopping):
		log.WarnContext(ctx, "import interrupted by the server's stop", "done", job.Done)
	case err != nil:
		log.ErrorContext(ctx, "import failed", "done", job.Done, "err", err.Error())
	default:
		log.InfoContext(ctx, "import done", "rows", job.Done, "created", job.Created, "merged", job.Merged,
			"skipped", job.Skipped, "failed", job.Failed, "dry_run", job.DryRun)
	}
}

func copyFile(path string, from io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, from); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progressSink stores an import's progress in the CRM, and tells the
// request's Progress of each save that succeeded.
type progressSink struct {
	CRM
	progress func(models.Import)
}

func (s progressSink) SaveImport(ctx context.Context, im models.Import) error {
	if err := s.CRM.SaveImport(ctx, im); err != nil {
		return err
	}
	if s.progress != nil {
		s.progress(im)
	}
	return nil
}
