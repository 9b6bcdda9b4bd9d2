package imports

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/models"
)

// progressEvery is how often an import's progress is saved.
const progressEvery = 500 * time.Millisecond

// A page of skipped rows is stored once it has skippedPageRows rows, or
// skippedPageEvery after the last page if fewer: a page is read by _id, so
// few full pages keep reading them cheap.
const (
	skippedPageRows  = 500
	skippedPageEvery = 5 * time.Second
)

// check validates a request's choices.
func (req Request) check() error {
	v := &models.ValidationError{}
	switch req.OnDuplicate {
	case crm.OnDuplicateSkip, crm.OnDuplicateMerge, crm.OnDuplicateFlag:
	default:
		v.Add("on_duplicate", "must be skip, merge or flag")
	}
	if !slices.Contains(crm.ImportKinds, req.kind()) {
		v.Add("kind", "must be one of %s", strings.Join(crm.ImportKinds, ", "))
	}
	return v.Err()
}

func (req Request) kind() string {
	if req.Kind == "" {
		return crm.ImportCustomers
	}
	return req.Kind
}

// run is one import of one sheet.
type run struct {
	crm      CRM
	sink     progressSink
	sheet    *sheets.Sheet
	req      Request
	settings models.Settings
	now      func() time.Time
	// rowsDone hears of rows handled, a progress report at a time.
	rowsDone func(kind string, n int)
	// told is how many of the rows handled rowsDone heard of.
	told int
}

// tell tells rowsDone of the rows handled since it was last told.
func (r *run) tell(job *models.Import) {
	if n := job.Done - r.told; n > 0 && r.rowsDone != nil {
		r.rowsDone(r.req.kind(), n)
		r.told = job.Done
	}
}

// newRecord is the import's record as it starts (state running, counts 0).
func (r *run) newRecord(fileName string) models.Import {
	now := r.now()
	return models.Import{
		ID: models.NewID(), TenantID: r.req.Actor.TenantID, UserID: r.req.Actor.UserID, Kind: r.req.kind(),
		FileName: fileName, Format: r.sheet.Format(), Encoding: r.sheet.Encoding(), OnDuplicate: r.req.OnDuplicate,
		DryRun: r.req.DryRun, State: models.ImportRunning, Unmapped: r.sheet.Unmapped(), Total: r.sheet.Rows(),
		StartedAt: now, UpdatedAt: now,
	}
}

// all imports every row and returns the final record. A row the CRM refuses
// is a failure with its line, column and reason, and the import goes on;
// only a fault of the servers stops it (state failed), and running the same
// file again then picks up where it stopped, since rows imported already
// are found by their ids.
//
// What the CRM refreshes after an import (RFM tiers) is refreshed before the
// record says done: a client that waits for done then reads tiers that count
// the imported rows, and no tier changes under a phone that syncs right after.
func (r *run) all(ctx context.Context, job models.Import) (models.Import, error) {
	err := r.rows(ctx, &job)
	var refresh error
	if err == nil {
		refresh = r.crm.ImportFinished(ctx, job)
	}
	end := r.now()
	job.FinishedAt, job.UpdatedAt, job.ETASeconds = &end, end, 0
	job.State = models.ImportDone
	if err != nil {
		job.State, job.Error = models.ImportFailed, err.Error()
	}
	if serr := r.sink.SaveImport(context.WithoutCancel(ctx), job); err == nil {
		err = serr
	}
	if err != nil {
		return job, err
	}
	if refresh != nil {
		// The rows are in; the daily refresh mends the tiers.
		return job, fmt.Errorf("import %s done, but: %w", job.ID, refresh)
	}
	return job, nil
}

func (r *run) rows(ctx context.Context, job *models.Import) error {
	var records *crm.RecordImport
	if r.req.kind() != crm.ImportCustomers {
		var err error
		if records, err = r.crm.StartRecordImport(ctx, r.req.Actor); err != nil {
			return err
		}
	}
	var failures []models.ImportFailure
	var skipped []models.SkippedRow
	pages, lastPage := 0, r.now()
	// flush stores the failures so far, and the skipped rows once a page of
	// them is full, once they have waited skippedPageEvery, or at the end.
	flush := func(last bool) error {
		if len(failures) > 0 {
			err := r.sink.AddImportFailures(ctx, job.ID, failures)
			failures = failures[:0]
			if err != nil {
				return err
			}
		}
		if t := r.now(); len(skipped) > 0 && (last || len(skipped) >= skippedPageRows || t.Sub(lastPage) >= skippedPageEvery) {
			pages, lastPage = pages+1, t
			err := r.sink.AddSkippedRows(ctx, job.ID, pages, skipped)
			skipped = nil // the sink may keep the slice
			return err
		}
		return nil
	}
	fail := func(line int, column, value, reason string) {
		failures = append(failures, models.ImportFailure{ImportID: job.ID, Line: line, Column: column, Value: value, Reason: reason})
	}
	skip := func(s models.SkippedRow) { skipped = append(skipped, s) }
	// seen remembers, in a dry run, the duplicate keys of rows that would be
	// created, to find duplicates within the file (a real run finds them in
	// the database, where the earlier row already is).
	seen := map[string]int{}
	lastReport := r.now()
	// handled counts a row handled and, every progressEvery, saves the
	// progress with the failures and skipped rows so far.
	handled := func() error {
		job.Done++
		if t := r.now(); t.Sub(lastReport) >= progressEvery || len(failures) >= 200 || len(skipped) >= skippedPageRows {
			lastReport = t
			estimate(job, t)
			r.tell(job)
			if err := flush(false); err != nil {
				return err
			}
			return r.sink.SaveImport(ctx, *job)
		}
		return nil
	}
	// An import reads a batch of rows, imports them side by side
	// (crm.Service.ImportCustomers, crm.RecordImport.ImportAll) and then
	// counts them in file order.
	var batch []sheetRow
	importBatch := func() error {
		var outs []crm.RowOutcome
		var errs []error
		if records == nil {
			outs, errs = r.customers(ctx, batch)
		} else {
			outs, errs = r.records(ctx, records, batch)
		}
		for i, b := range batch {
			if err := r.counted(job, b.line, b.cells, b.err != nil, outs[i], errs[i], seen, fail, skip); err != nil {
				return fmt.Errorf("line %d: %w", b.line, err)
			}
			if err := handled(); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	err := r.sheet.Read(func(line int, cells []string, rowErr error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch = append(batch, sheetRow{line: line, cells: slices.Clone(cells), err: rowErr})
		if len(batch) < batchRows {
			return nil
		}
		return importBatch()
	})
	if err == nil && len(batch) > 0 {
		err = importBatch()
	}
	r.tell(job)
	if err != nil {
		return err
	}
	estimate(job, r.now())
	return flush(true)
}

// batchRows is how many rows of an import are read before they are
// imported side by side, and parallelRows how many of them are under way at
// once: the more share a commit, the fewer pages each writes (20,000
// customer rows on SQLite: 64 at once 620–660 rows/s, 256 at once 710–770,
// 512 no better). Progress is saved between batches: a batch takes one to
// three seconds (SQLite, PostgreSQL).
const (
	batchRows    = 1024
	parallelRows = 256
)

// sheetRow is a row of the sheet read and waiting in a batch.
type sheetRow struct {
	line  int
	cells []string
	err   error // the row could not be read
}

// customers imports a batch of customer rows.
func (r *run) customers(ctx context.Context, batch []sheetRow) ([]crm.RowOutcome, []error) {
	return importRows(r, batch, r.sheet.Customer, func(ids []string, rows []models.Customer) ([]crm.RowOutcome, []error) {
		return r.crm.ImportCustomers(ctx, r.req.Actor, ids, rows, r.req.OnDuplicate, r.req.DryRun, parallelRows)
	})
}

// records imports a batch of rows of records (contacts, interactions,
// orders, payments).
func (r *run) records(ctx context.Context, records *crm.RecordImport, batch []sheetRow) ([]crm.RowOutcome, []error) {
	read := func(cells []string) (crm.RecordRow, error) {
		return r.sheet.Record(cells, r.settings, records.Location())
	}
	return importRows(r, batch, read, func(ids []string, rows []crm.RecordRow) ([]crm.RowOutcome, []error) {
		return records.ImportAll(ctx, ids, rows, r.req.DryRun, parallelRows)
	})
}

// importRows reads each row of batch with read and imports the rows read,
// each under the id of its content, with importAll. It returns each row's
// outcome and error: a row that could not be read from the file, or read
// with read, gets that error and is not imported.
func importRows[T any](r *run, batch []sheetRow, read func(cells []string) (T, error),
	importAll func(ids []string, rows []T) ([]crm.RowOutcome, []error)) ([]crm.RowOutcome, []error) {
	outs, errs := make([]crm.RowOutcome, len(batch)), make([]error, len(batch))
	var ids []string
	var rows []T
	var at []int
	for i, b := range batch {
		if errs[i] = b.err; b.err != nil {
			continue
		}
		row, err := read(b.cells)
		if errs[i] = err; err != nil {
			continue
		}
		ids = append(ids, crm.ImportedID(r.req.Actor.TenantID, r.req.kind(), r.sheet.RowKey(b.cells)))
		rows, at = append(rows, row), append(at, i)
	}
	imported, importErrs := importAll(ids, rows)
	for k, i := range at {
		outs[i], errs[i] = imported[k], importErrs[k]
	}
	return outs, errs
}

// counted counts what became of one row (out, or err): a line that could
// not be read (unreadable) and a row the CRM refused are failures, the
// latter with its columns and reasons; any other error is a fault, returned.
func (r *run) counted(job *models.Import, line int, cells []string, unreadable bool, out crm.RowOutcome, err error, seen map[string]int,
	fail func(int, string, string, string), skip func(models.SkippedRow)) error {
	if err == nil {
		r.count(job, out, line, seen, skip)
		return nil
	}
	var invalid *models.ValidationError
	var forbidden *models.ForbiddenError
	switch {
	case unreadable:
		fail(line, "", "", err.Error())
	case errors.As(err, &invalid):
		for _, f := range invalid.Fields {
			column, value := r.sheet.Cell(cells, f.Field)
			fail(line, column, value, f.Field+" "+f.Message)
		}
	case errors.As(err, &forbidden):
		fail(line, "", "", forbidden.Reason)
	default:
		return err
	}
	job.Failed++
	return nil
}

// count counts what became of a row; a row skipped or merged is listed
// through skip, with what it matched.
func (r *run) count(job *models.Import, out crm.RowOutcome, line int, seen map[string]int, skip func(models.SkippedRow)) {
	if r.req.DryRun && out.Action == crm.RowCreated && r.req.OnDuplicate != crm.OnDuplicateFlag {
		for _, k := range out.DedupeKeys {
			if earlier, dup := seen[k]; dup {
				out.Action = map[string]string{crm.OnDuplicateSkip: crm.RowSkipped, crm.OnDuplicateMerge: crm.RowMerged}[r.req.OnDuplicate]
				out.Reason = fmt.Sprintf("matches line %d of the file (%s)", earlier, models.DuplicateReason(k))
				break
			}
		}
	}
	if r.req.DryRun && out.Action == crm.RowCreated {
		for _, k := range out.DedupeKeys {
			seen[k] = line
		}
	}
	switch out.Action {
	case crm.RowCreated:
		job.Created++
		return
	case crm.RowMerged:
		job.Merged++
	default:
		job.Skipped++
	}
	skip(models.SkippedRow{Line: line, Action: out.Action, Reason: out.Reason, MatchedID: out.MatchedID, MatchedNumber: out.MatchedNumber})
}

// estimate updates the record's time, speed and time left.
func estimate(job *models.Import, t time.Time) {
	job.UpdatedAt = t
	elapsed := t.Sub(job.StartedAt).Seconds()
	if elapsed <= 0 || job.Done == 0 {
		return
	}
	job.RowsPerSecond = float64(job.Done) / elapsed
	job.ETASeconds = float64(job.Total-job.Done) / job.RowsPerSecond
}
