package sheets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// Importer imports rows, and hears when an import has finished (crm.Service:
// it then refreshes what depends on customers and orders, RFM tiers).
type Importer interface {
	ImportCustomer(ctx context.Context, a models.Actor, id string, row models.Customer, onDuplicate string, dryRun bool) (crm.RowOutcome, error)
	StartRecordImport(ctx context.Context, a models.Actor) (*crm.RecordImport, error)
	ImportFinished(ctx context.Context, im models.Import) error
}

// Sink keeps an import's progress, its failed rows and the rows it skipped
// or merged as duplicates as it goes: crm.Service stores them for GET
// /v1/imports/{id}; the CLI also draws a progress bar.
type Sink interface {
	SaveImport(ctx context.Context, im models.Import) error
	AddImportFailures(ctx context.Context, importID string, f []models.ImportFailure) error
	// AddSkippedRows stores a page of skipped rows as page number page;
	// pages are numbered from 1, one after the other, in line order.
	AddSkippedRows(ctx context.Context, importID string, page int, rows []models.SkippedRow) error
}

// Options are the choices of one import.
type Options struct {
	Actor models.Actor
	// Kind is what the file holds: one of crm.ImportKinds (default customers).
	Kind string
	// OnDuplicate is what a customer row matching an existing customer does.
	OnDuplicate string
	DryRun      bool
	Mapping     Mapping
	// Settings are the tenant's: its custom fields, its currency.
	Settings models.Settings
}

// Check validates the options.
func (o Options) Check() error {
	v := &models.ValidationError{}
	switch o.OnDuplicate {
	case crm.OnDuplicateSkip, crm.OnDuplicateMerge, crm.OnDuplicateFlag:
	default:
		v.Add("on_duplicate", "must be skip, merge or flag")
	}
	if _, ok := kinds[o.kind()]; !ok {
		v.Add("kind", "must be one of %s", strings.Join(crm.ImportKinds, ", "))
	}
	return v.Err()
}

func (o Options) kind() string {
	if o.Kind == "" {
		return crm.ImportCustomers
	}
	return o.Kind
}

// Prepared is an import whose file has been read far enough to know its
// columns: a file that cannot be imported at all (not a spreadsheet, no name
// column, a bad mapping) fails in Prepare, before any job starts.
type Prepared struct {
	path string
	kind kind
	plan columnPlan
	o    Options
	job  models.Import
}

// progressEvery is how often progress reaches the sink.
const progressEvery = 500 * time.Millisecond

// A page of skipped rows is stored once it has skippedPageRows rows, or
// skippedPageEvery after the last page if fewer.
const (
	skippedPageRows  = 500
	skippedPageEvery = 5 * time.Second
)

// Prepare opens the file, reads its header and counts its rows.
func Prepare(path, fileName string, o Options, now time.Time) (*Prepared, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	format, err := FormatOf(fileName)
	if err != nil {
		return nil, fileError(err)
	}
	rows, encoding, err := openRows(path, format)
	if err != nil {
		return nil, fileError(err)
	}
	defer rows.close()
	var headers []string
	for headers == nil {
		_, cells, err := rows.next()
		if errors.Is(err, io.EOF) {
			return nil, fileError(errors.New("the file is empty"))
		}
		if err != nil {
			return nil, fileError(err)
		}
		if !blank(cells) {
			headers = cells
		}
	}
	k := kinds[o.kind()]
	p, err := plan(k, headers, o.Mapping, o.Settings.CustomFields)
	if err != nil {
		return nil, err
	}
	total, err := countRows(path, format)
	if err != nil {
		return nil, fileError(err)
	}
	job := models.Import{
		ID: models.NewID(), TenantID: o.Actor.TenantID, UserID: o.Actor.UserID, Kind: k.name,
		FileName: fileName, Format: format, Encoding: encoding, OnDuplicate: o.OnDuplicate, DryRun: o.DryRun,
		State: models.ImportRunning, Unmapped: p.unmapped(), Total: total, StartedAt: now, UpdatedAt: now,
	}
	if job.Unmapped == nil {
		job.Unmapped = []string{}
	}
	return &Prepared{path: path, kind: k, plan: p, o: o, job: job}, nil
}

func fileError(err error) error {
	return &models.ValidationError{Fields: []models.FieldError{{Field: "file", Message: err.Error()}}}
}

// Job is the import's record as Prepare made it (state running, counts 0).
func (p *Prepared) Job() models.Import { return p.job }

// Run imports every row, reporting to sink, and returns the final record.
// A row the CRM refuses is a failure with its line, column and reason, and
// the import goes on; only a fault of the servers stops it (state failed),
// and running the same file again then picks up where it stopped.
func (p *Prepared) Run(ctx context.Context, crmSvc Importer, sink Sink, now func() time.Time) (models.Import, error) {
	job := p.job
	err := p.run(ctx, crmSvc, sink, now, &job)
	end := now()
	job.FinishedAt, job.UpdatedAt, job.ETASeconds = &end, end, 0
	job.State = models.ImportDone
	if err != nil {
		job.State, job.Error = models.ImportFailed, err.Error()
	}
	if serr := sink.SaveImport(context.WithoutCancel(ctx), job); err == nil {
		err = serr
	}
	if err != nil {
		return job, err
	}
	if err := crmSvc.ImportFinished(ctx, job); err != nil {
		return job, fmt.Errorf("import %s done, but: %w", job.ID, err)
	}
	return job, nil
}

func (p *Prepared) run(ctx context.Context, crmSvc Importer, sink Sink, now func() time.Time, job *models.Import) error {
	rows, _, err := openRows(p.path, job.Format)
	if err != nil {
		return err
	}
	defer rows.close()
	var records *crm.RecordImport
	if p.kind.name != crm.ImportCustomers {
		if records, err = crmSvc.StartRecordImport(ctx, p.o.Actor); err != nil {
			return err
		}
	}
	var failures []models.ImportFailure
	var skipped []models.SkippedRow
	pages, lastPage := 0, now()
	// flush stores the failures so far, and the skipped rows once a page of
	// them is full, once they have waited skippedPageEvery, or at the end
	// (last): a page is read by _id, so few full pages keep reading them cheap.
	flush := func(last bool) error {
		if len(failures) > 0 {
			err := sink.AddImportFailures(ctx, job.ID, failures)
			failures = failures[:0]
			if err != nil {
				return err
			}
		}
		if t := now(); len(skipped) > 0 && (last || len(skipped) >= skippedPageRows || t.Sub(lastPage) >= skippedPageEvery) {
			pages, lastPage = pages+1, t
			err := sink.AddSkippedRows(ctx, job.ID, pages, skipped)
			skipped = nil // the sink may keep the slice
			return err
		}
		return nil
	}
	fail := func(line int, column, value, reason string) {
		failures = append(failures, models.ImportFailure{ImportID: job.ID, Line: line, Column: column, Value: value, Reason: reason})
	}
	skip := func(r models.SkippedRow) { skipped = append(skipped, r) }
	// seen remembers, in a dry run, the duplicate keys of rows that would be
	// created, to find duplicates within the file (a real run finds them in
	// the database, where the earlier row already is).
	seen := map[string]int{}
	lastReport := now()
	header := true
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, cells, err := rows.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if line == 0 {
				return err
			}
			fail(line, "", "", err.Error())
			job.Failed++
			job.Done++
			continue
		}
		if blank(cells) {
			continue
		}
		if header {
			header = false
			continue
		}
		if err := p.row(ctx, crmSvc, records, line, cells, job, seen, fail, skip); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		job.Done++
		if t := now(); t.Sub(lastReport) >= progressEvery || len(failures) >= 200 || len(skipped) >= skippedPageRows {
			lastReport = t
			p.estimate(job, t)
			if err := flush(false); err != nil {
				return err
			}
			if err := sink.SaveImport(ctx, *job); err != nil {
				return err
			}
		}
	}
	p.estimate(job, now())
	return flush(true)
}

// row imports one data row and counts what became of it.
func (p *Prepared) row(ctx context.Context, crmSvc Importer, records *crm.RecordImport, line int, cells []string, job *models.Import, seen map[string]int,
	fail func(int, string, string, string), skip func(models.SkippedRow)) error {
	var out crm.RowOutcome
	var err error
	if records == nil {
		var c models.Customer
		if c, err = p.plan.customer(cells, job.Format == XLSX, p.o.Settings.CustomFields); err == nil {
			out, err = crmSvc.ImportCustomer(ctx, p.o.Actor, p.rowID(cells), c, p.o.OnDuplicate, p.o.DryRun)
		}
	} else {
		var r crm.RecordRow
		if r, err = p.plan.record(p.kind, cells, job.Format == XLSX, p.o.Settings, records.Location()); err == nil {
			out, err = records.Import(ctx, p.rowID(cells), r, p.o.DryRun)
		}
	}
	if err == nil {
		p.count(job, out, line, seen, skip)
		return nil
	}
	var invalid *models.ValidationError
	var forbidden *models.ForbiddenError
	switch {
	case errors.As(err, &invalid):
		for _, f := range invalid.Fields {
			column := p.plan.columnOf(f.Field, p.kind.fieldColumns)
			fail(line, column, p.plan.value(cells, column), f.Field+" "+f.Message)
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
func (p *Prepared) count(job *models.Import, out crm.RowOutcome, line int, seen map[string]int, skip func(models.SkippedRow)) {
	if p.o.DryRun && out.Action == crm.RowCreated && p.o.OnDuplicate != crm.OnDuplicateFlag {
		for _, k := range out.DedupeKeys {
			if earlier, dup := seen[k]; dup {
				out.Action = map[string]string{crm.OnDuplicateSkip: crm.RowSkipped, crm.OnDuplicateMerge: crm.RowMerged}[p.o.OnDuplicate]
				out.Reason = fmt.Sprintf("matches line %d of the file (%s)", earlier, models.DuplicateReason(k))
				break
			}
		}
	}
	if p.o.DryRun && out.Action == crm.RowCreated {
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

// rowID is the stable id of a row's record: from its number in the old
// system when it has one (a payment's within its order), else from its
// content, so the same row imported twice is the same record.
func (p *Prepared) rowID(raw []string) string {
	c := p.plan.cells(raw, false)
	ref := ""
	if p.kind.refField != "" {
		ref = c.get(p.kind.refField)
	}
	key := "ref:" + ref
	switch {
	case ref != "" && p.kind.name == crm.ImportPayments:
		key = "ref:" + c.get("order_no") + "/" + ref
	case ref == "":
		var parts []string
		for i, t := range p.plan.targets {
			if t != "" && t != Ignore && i < len(raw) {
				parts = append(parts, t+"="+strings.TrimSpace(raw[i]))
			}
		}
		key = "row:" + strings.Join(parts, "\x1f")
	}
	return crm.ImportedID(p.o.Actor.TenantID, p.kind.name, key)
}

func (p *Prepared) estimate(job *models.Import, t time.Time) {
	job.UpdatedAt = t
	elapsed := t.Sub(job.StartedAt).Seconds()
	if elapsed <= 0 || job.Done == 0 {
		return
	}
	job.RowsPerSecond = float64(job.Done) / elapsed
	job.ETASeconds = float64(job.Total-job.Done) / job.RowsPerSecond
}

// value returns the cell of the named column.
func (p columnPlan) value(cells []string, column string) string {
	for i, h := range p.headers {
		if h == column && i < len(cells) {
			return cells[i]
		}
	}
	return ""
}
