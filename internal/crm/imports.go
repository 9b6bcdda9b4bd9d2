package crm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// What an import does with a row that matches an existing customer (same
// phone, e-mail or company; see checkDuplicates).
const (
	OnDuplicateSkip  = "skip"  // leave the existing customer alone
	OnDuplicateMerge = "merge" // fill its empty fields, add phones, e-mails, tags
	OnDuplicateFlag  = "flag"  // create the row anyway, flagged as a possible duplicate
)

// What became of an imported row.
const (
	RowCreated = "created"
	RowMerged  = "merged"
	RowSkipped = "skipped"
)

// RowOutcome is what became of one imported customer row.
type RowOutcome struct {
	Action     string `json:"action"`
	CustomerID string `json:"customer_id,omitempty"`
	// MatchedID and MatchedNumber name what a skipped or merged row matched:
	// the customer (for a customer row), or the record imported before.
	MatchedID     string `json:"matched_id,omitempty"`
	MatchedNumber string `json:"matched_number,omitempty"`
	// Reason says why a row was skipped or merged: which customer it
	// matches and by which keys.
	Reason string `json:"reason,omitempty"`
	// DedupeKeys are the row's normalized keys (a dry run remembers them to
	// find duplicates within the file, since it writes nothing).
	DedupeKeys []string `json:"-"`
}

// ImportCustomer imports one customer row as the actor, under id: a stable id
// derived from the row by the importer, so importing the same file again
// finds every row imported already and creates nothing twice. The row is
// normalized, validated, numbered and checked for duplicates as any other
// create; onDuplicate decides what a match means. With dryRun nothing is
// written (no number is used up either) and the outcome says what would happen.
func (s *Service) ImportCustomer(ctx context.Context, a models.Actor, id string, row models.Customer, onDuplicate string, dryRun bool) (RowOutcome, error) {
	before, err := s.Customers.load(ctx, a.TenantID, id)
	if err == nil {
		return RowOutcome{Action: RowSkipped, CustomerID: id, MatchedID: id, MatchedNumber: before.Number, Reason: "imported before"}, nil
	}
	if !errors.Is(err, models.ErrNotFound) {
		return RowOutcome{}, err
	}
	if dryRun {
		return s.checkImport(ctx, a, row, onDuplicate)
	}
	created, err := s.Customers.createAs(ctx, a, row, onDuplicate == OnDuplicateFlag, id)
	var dup *models.DuplicateError
	if !errors.As(err, &dup) {
		if err != nil {
			return RowOutcome{}, err
		}
		return RowOutcome{Action: RowCreated, CustomerID: created.ID}, nil
	}
	match := dup.Candidates[0]
	if onDuplicate == OnDuplicateSkip {
		return matchedOutcome(RowSkipped, match, ""), nil
	}
	merged, err := s.Customers.mutate(ctx, a, match.ID, "import merge", func(w *write[models.Customer]) error {
		if err := s.Customers.checkEdit(a, w.old, 0); err != nil {
			return err
		}
		fillEmpty(w.rec, &row)
		w.flagDuplicates = true
		return s.prepareCustomer(ctx, w)
	})
	var forbidden *models.ForbiddenError
	if errors.Is(err, models.ErrNotFound) || errors.As(err, &forbidden) {
		return matchedOutcome(RowSkipped, match, ", which you may not edit"), nil
	}
	if err != nil {
		return RowOutcome{}, err
	}
	match.Number = merged.Number
	return matchedOutcome(RowMerged, match, "; merged into it"), nil
}

// ImportCustomers imports rows[i] under ids[i] as ImportCustomer does and
// returns each row's outcome and error, in order. The outcomes are those of
// importing the rows one after another in their order, but up to parallel
// rows are under way at once, so that their writes share commits: a row
// starts once every earlier row sharing its id or one of its lookup keys
// (phones, e-mails, names) has finished, so a row matching an earlier row of
// the file finds it stored. Numbers are taken as rows are stored, so rows
// under way together may take theirs out of the file's order; a row skipped
// as a duplicate takes none.
//
// A merge goes one row after another: rows sharing no key may match one
// stored customer, whose empty fields are then filled in the file's order.
// The first error that is not about its row (a fault) stops the rows not
// yet being imported; each of them gets it.
func (s *Service) ImportCustomers(ctx context.Context, a models.Actor, ids []string, rows []models.Customer, onDuplicate string, dryRun bool, parallel int) ([]RowOutcome, []error) {
	outs := make([]RowOutcome, len(rows))
	st, err := s.settings(ctx, a.TenantID)
	if err != nil {
		errs := make([]error, len(rows))
		for i := range errs {
			errs[i] = err
		}
		return outs, errs
	}
	if onDuplicate == OnDuplicateMerge && !dryRun {
		parallel = 1
	}
	order := newEntryOrder()
	enter := func(i int) ([]int, error) {
		names := []string{"id\x00" + ids[i]}
		row := rows[i] // Prepare normalizes in place, as the import does again
		row.TenantID = a.TenantID
		if row.Prepare(st) == nil {
			names = append(names, row.LookupKeys()...)
		}
		return order.enter(i, names), nil
	}
	apply := func(i int) error {
		var err error
		outs[i], err = s.ImportCustomer(ctx, a, ids[i], rows[i], onDuplicate, dryRun)
		return err
	}
	return outs, sideBySide(len(rows), parallel, enter, apply)
}

// matchedOutcome is the outcome of a row that matched customer m: skipped
// or merged, the reason naming m and the keys both have, then more.
func matchedOutcome(action string, m models.DuplicateCandidate, more string) RowOutcome {
	return RowOutcome{Action: action, CustomerID: m.ID, MatchedID: m.ID, MatchedNumber: m.Number, Reason: duplicateReason(m) + more}
}

// checkImport is a dry run of one row: normalized and validated, and looked
// up among the tenant's customers, with nothing written.
func (s *Service) checkImport(ctx context.Context, a models.Actor, row models.Customer, onDuplicate string) (RowOutcome, error) {
	st, err := s.settings(ctx, a.TenantID)
	if err != nil {
		return RowOutcome{}, err
	}
	row.TenantID = a.TenantID
	if err := row.Prepare(st); err != nil {
		return RowOutcome{}, err
	}
	out := RowOutcome{Action: RowCreated, DedupeKeys: row.DedupeKeys}
	if len(row.DedupeKeys) == 0 || onDuplicate == OnDuplicateFlag {
		return out, nil
	}
	matches, err := s.store.CustomersSharingKeys(ctx, a.TenantID, row.DedupeKeys, "", 1)
	if err != nil || len(matches) == 0 {
		return out, err
	}
	m := candidate(matches[0], row.DedupeKeys)
	out = matchedOutcome(RowSkipped, m, "")
	if onDuplicate == OnDuplicateMerge {
		out = matchedOutcome(RowMerged, m, "; merged into it")
	}
	out.DedupeKeys = row.DedupeKeys
	return out, nil
}

func duplicateReason(m models.DuplicateCandidate) string {
	why := ""
	if len(m.Reasons) > 0 {
		why = " (" + strings.Join(m.Reasons, ", ") + ")"
	}
	return fmt.Sprintf("matches %s %s%s", m.Number, m.Name, why)
}

// importStaleAfter is how long a running import may go without reporting
// progress before it counts as interrupted (its process stopped).
const importStaleAfter = 2 * time.Minute

// SaveImport stores an import's record (its progress), as run by this
// process. Once the process is stopping (StopImports) it refuses to save a
// running import or one of its own, with ErrStopping.
func (s *Service) SaveImport(ctx context.Context, im models.Import) error {
	s.runs.mu.RLock()
	defer s.runs.mu.RUnlock()
	if s.runs.stopping && (im.State == models.ImportRunning || s.runs.owns(im.ID)) {
		return fmt.Errorf("save import %s: %w", im.ID, ErrStopping)
	}
	im.Runner = s.instance
	if err := s.store.SaveImport(ctx, im); err != nil {
		return err
	}
	s.runs.track(im)
	return nil
}

// track records whether this process still runs im.
func (r *importRuns) track(im models.Import) {
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	if im.State == models.ImportRunning {
		r.own[im.ID] = true
	} else {
		delete(r.own, im.ID)
	}
}

// ImportFinished runs after an import: customers created or merged change
// the RFM segmentation, so the tenant's tiers are refreshed.
func (s *Service) ImportFinished(ctx context.Context, im models.Import) error {
	if im.DryRun || im.Created+im.Merged == 0 {
		return nil
	}
	if _, err := s.RefreshRFM(ctx, im.TenantID); err != nil {
		return fmt.Errorf("refresh RFM tiers: %w", err)
	}
	return nil
}

// AddImportFailures stores failed rows of an import.
func (s *Service) AddImportFailures(ctx context.Context, importID string, f []models.ImportFailure) error {
	return s.store.AddImportFailures(ctx, importID, f)
}

// AddSkippedRows stores page number page of an import's skipped and merged
// rows (see store.AddSkippedRows).
func (s *Service) AddSkippedRows(ctx context.Context, importID string, page int, rows []models.SkippedRow) error {
	return s.store.AddSkippedRows(ctx, importID, page, rows)
}

// SkippedRows returns an import's skipped and merged rows, in line order,
// for someone who may see the import: those of its pages from page (from 1)
// on, whole pages until there are at least limit rows. next is the page to
// ask for the rows after them, 0 once there are no more.
func (s *Service) SkippedRows(ctx context.Context, a models.Actor, id string, page, limit int) (rows []models.SkippedRow, next int, err error) {
	if _, err := s.Import(ctx, a, id); err != nil {
		return nil, 0, err
	}
	rows = []models.SkippedRow{}
	for ; len(rows) < limit; page++ {
		more, err := s.store.SkippedRows(ctx, id, page)
		if err != nil {
			return nil, 0, err
		}
		if len(more) == 0 {
			return rows, 0, nil
		}
		rows = append(rows, more...)
	}
	return rows, page, nil
}

// Import returns an import the actor may see: their own, or any of the
// tenant's for an admin. One that stopped reporting is shown interrupted.
func (s *Service) Import(ctx context.Context, a models.Actor, id string) (models.Import, error) {
	im, err := s.store.Import(ctx, a.TenantID, id)
	if err != nil {
		return im, err
	}
	if im.UserID != a.UserID && a.Role != models.RoleAdmin {
		return models.Import{}, models.ErrNotFound
	}
	if im.State == models.ImportRunning && s.now().Sub(im.UpdatedAt) > importStaleAfter {
		im.State = models.ImportInterrupted
		im.Error = "the import stopped reporting progress (its server stopped); import the same file again: rows imported already are skipped"
	}
	return im, nil
}

// ImportFailures returns a page of an import's failed rows (after the one
// with id after), for someone who may see the import.
func (s *Service) ImportFailures(ctx context.Context, a models.Actor, id, after string, limit int) ([]models.ImportFailure, error) {
	if _, err := s.Import(ctx, a, id); err != nil {
		return nil, err
	}
	return s.store.ImportFailures(ctx, id, after, limit)
}

// importRuns is what a Service knows of the imports its own process runs.
type importRuns struct {
	// mu is held for reading by every save of an import and for writing by
	// StopImports, so no save still in flight lands after the stop's mark.
	mu       sync.RWMutex
	stopping bool
	ownMu    sync.Mutex
	own      map[string]bool // ids of the imports this process runs
}

// owns reports whether this process runs the import id.
func (r *importRuns) owns(id string) bool {
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	return r.own[id]
}

// ErrStopping is returned by SaveImport once the process is stopping: the
// import's run should end, its record says interrupted.
var ErrStopping = errors.New("the server is stopping")

// interruptedReason is the error of an import whose process stopped.
const interruptedReason = "the server running the import stopped before it finished; import the same file again: rows imported already are skipped, the others are imported"

// InterruptDeadImports marks as interrupted the imports left running by a
// process that is gone, and returns how many. It runs at start-up. With
// replicas false (this process is the only one: embedded storage and
// in-process Redis) every running import not started by this process is
// dead. With replicas, another process may be running one, so only imports
// whose progress heartbeat (updated_at, written every half second while rows
// are imported) stopped more than importStaleAfter ago are marked; the rest
// read interrupted once theirs stops too (see Import). Each mark is
// conditional on the import not having saved progress since it was read.
func (s *Service) InterruptDeadImports(ctx context.Context, replicas bool) (int, error) {
	running, err := s.store.RunningImports(ctx)
	if err != nil {
		return 0, err
	}
	now := s.now().UTC()
	n := 0
	for _, im := range running {
		if im.Runner == s.instance || s.runs.owns(im.ID) || (replicas && now.Sub(im.UpdatedAt) <= importStaleAfter) {
			continue
		}
		ok, err := s.store.InterruptImport(ctx, im.ID, im.Runner, im.UpdatedAt, interruptedReason, now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// StopImports marks the imports this process is running as interrupted, for
// a graceful stop, and returns how many. From then on SaveImport refuses
// their progress (ErrStopping), so a run still going cannot put them back to
// running, or to failed when the database closes under it.
func (s *Service) StopImports(ctx context.Context) (int, error) {
	s.runs.mu.Lock()
	s.runs.stopping = true
	s.runs.mu.Unlock()
	s.runs.ownMu.Lock()
	ids := make([]string, 0, len(s.runs.own))
	for id := range s.runs.own {
		ids = append(ids, id)
	}
	s.runs.ownMu.Unlock()
	n := 0
	for _, id := range ids {
		ok, err := s.store.InterruptImport(ctx, id, s.instance, time.Time{}, interruptedReason, s.now().UTC())
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}
