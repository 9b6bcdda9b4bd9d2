package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// Collections of CRM records. Every document in them embeds models.Meta.
const (
	Customers      = "customers"
	Contacts       = "contacts"
	Interactions   = "interactions"
	Tasks          = "tasks"
	Orders         = "orders"
	Payments       = "payments"
	Tickets        = "tickets"
	Surveys        = "surveys"
	LoyaltyEntries = "loyalty_entries"
	Conflicts      = "conflicts"

	collAudit           = "audit"
	collCustomerNumbers = "customer_numbers"
)

// ChildCollections hold records that belong to a customer (they carry customer_id).
var ChildCollections = []string{Contacts, Interactions, Tasks, Orders, Payments, Tickets, Surveys, LoyaltyEntries}

func auditID(coll, id string, version int64) string {
	return coll + "/" + id + "/" + strconv.FormatInt(version, 10)
}

// staleClaimAge is how old a version claim must be, with the record still at
// the version before it, to count as left behind by a writer that crashed
// between the claim and the write. Writes take milliseconds.
const staleClaimAge = time.Minute

// Insert stores a new record at version 1 with its audit entry.
func (s *Store) Insert(ctx context.Context, coll string, meta *models.Meta, doc any, entry models.AuditEntry) error {
	fillEntry(&entry, coll, meta)
	err := s.writeDirect(ctx, direct{coll: collAudit, doc: entry}, direct{coll: coll, doc: doc})
	if !errors.Is(err, errors.ErrUnsupported) {
		if err != nil {
			return fmt.Errorf("insert %s %s: %w", coll, meta.ID, err)
		}
		return nil
	}
	if err := s.insert(ctx, collAudit, entry); err != nil {
		return fmt.Errorf("audit new %s %s: %w", coll, meta.ID, err)
	}
	if err := s.insert(ctx, coll, doc); err != nil {
		_ = s.deleteByID(context.WithoutCancel(ctx), collAudit, entry.ID)
		return fmt.Errorf("insert %s %s: %w", coll, meta.ID, err)
	}
	return nil
}

// InsertUnaudited stores a new record at version 1 without an audit entry,
// for records the server writes for itself (inbox notes). models.ErrConflict
// means a record with its id exists.
func (s *Store) InsertUnaudited(ctx context.Context, coll string, meta *models.Meta, doc any) error {
	if err := s.insert(ctx, coll, doc); err != nil {
		return fmt.Errorf("insert %s %s: %w", coll, meta.ID, err)
	}
	return nil
}

// InsertBatch stores new records at version 1 with one audit entry each (the
// action of entry): for bulk loads such as seeding a benchmark. On the
// embedded engines the batch is one transaction, all or nothing; through the
// driver it is two round trips that stop at the first failure, which may
// leave part of the batch written. Writes that need an outcome per record
// use Insert.
func (s *Store) InsertBatch(ctx context.Context, coll string, records []models.Record, entry models.AuditEntry) error {
	entries := make([]any, len(records))
	docs := make([]any, len(records))
	for i, rec := range records {
		e := entry
		fillEntry(&e, coll, rec.Header())
		entries[i], docs[i] = e, rec
	}
	// Where IDTables writes, the whole batch is one transaction.
	writes := make([]direct, 0, 2*len(records))
	for i := range records {
		writes = append(writes, direct{coll: collAudit, doc: entries[i]}, direct{coll: coll, doc: docs[i]})
	}
	if err := s.writeDirect(ctx, writes...); !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	if err := s.insertMany(ctx, collAudit, entries); err != nil {
		return fmt.Errorf("audit new %s: %w", coll, err)
	}
	return s.insertMany(ctx, coll, docs)
}

// insertMany adds docs in one round trip, stopping at the first failure.
func (s *Store) insertMany(ctx context.Context, coll string, docs []any) error {
	if _, err := s.coll(coll).InsertMany(ctx, docs); err != nil {
		return fmt.Errorf("insert %d into %s: %w", len(docs), coll, err)
	}
	return nil
}

// Commit replaces a record whose stored version is meta.Version-1 with doc (at
// meta.Version), writing its audit entry. It returns models.ErrConflict when
// another writer got to that version first: the caller read a stale record.
//
// The audit entry is inserted first, under its unique _id: that insert is the
// atomic decision FerretDB lacks for conditional updates. The replace that follows
// is still filtered on the previous version, which MongoDB checks atomically.
func (s *Store) Commit(ctx context.Context, coll string, meta *models.Meta, doc any, entry models.AuditEntry) error {
	fillEntry(&entry, coll, meta)
	// Where IDTables writes, claim and record go in one transaction.
	commit := func() error {
		return s.writeDirect(ctx, direct{coll: collAudit, doc: entry}, direct{coll: coll, doc: doc, replace: true})
	}
	err := commit()
	if errors.Is(err, models.ErrConflict) && s.clearStaleClaim(ctx, coll, meta, entry.ID) {
		err = commit()
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		if err != nil {
			return fmt.Errorf("commit %s: %w", entry.ID, err)
		}
		return nil
	}
	err = s.insert(ctx, collAudit, entry)
	if errors.Is(err, models.ErrConflict) && s.clearStaleClaim(ctx, coll, meta, entry.ID) {
		err = s.insert(ctx, collAudit, entry)
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", entry.ID, err)
	}
	// The version condition lets MongoDB refuse a stale write atomically. On
	// embedded SQLite it would turn the write into a scan of the collection
	// (FerretDB pushes down only a filter that is exactly {_id}), and FerretDB
	// checks it without atomicity anyway; the claim above is what decides there.
	filter := bson.D{{Key: "_id", Value: meta.ID}, {Key: "version", Value: meta.Version - 1}}
	if s.sqliteDir != "" {
		filter = filter[:1]
	}
	res, err := s.coll(coll).ReplaceOne(ctx, filter, doc)
	if err == nil && res.MatchedCount == 0 {
		err = models.ErrConflict
	}
	if err != nil {
		_ = s.deleteByID(context.WithoutCancel(ctx), collAudit, entry.ID)
		return fmt.Errorf("write %s %s: %w", coll, meta.ID, err)
	}
	return nil
}

// clearStaleClaim removes a version claim left by a writer that died before
// writing the record, and reports whether it did.
func (s *Store) clearStaleClaim(ctx context.Context, coll string, meta *models.Meta, claimID string) bool {
	var claim models.AuditEntry
	if err := s.findByID(ctx, collAudit, claimID, &claim); err != nil || time.Since(claim.At) < staleClaimAge {
		return false
	}
	var current struct {
		Version int64 `bson:"version"`
	}
	if err := s.findByID(ctx, coll, meta.ID, &current); err != nil || current.Version != meta.Version-1 {
		return false
	}
	s.log.WarnContext(ctx, "clearing a stale version claim", "claim", claimID, "claimed_at", claim.At)
	res, err := s.coll(collAudit).DeleteOne(ctx, bson.D{{Key: "_id", Value: claimID}, {Key: "at", Value: claim.At}})
	return err == nil && res.DeletedCount == 1
}

// fillEntry stamps e as the entry of meta's version of a record of coll.
func fillEntry(e *models.AuditEntry, coll string, meta *models.Meta) {
	e.ID = auditID(coll, meta.ID, meta.Version)
	e.TenantID = meta.TenantID
	e.Collection = coll
	e.RecordID = meta.ID
	e.Version = meta.Version
	e.ActorID = meta.UpdatedBy
	e.At = meta.UpdatedAt
}

// Get loads record id of tenant from coll into out, or returns models.ErrNotFound.
// Tombstones are returned too; callers decide what a deleted record means.
func (s *Store) Get(ctx context.Context, coll, tenant, id string, out any) error {
	var raw bson.Raw
	if err := s.findByID(ctx, coll, id, &raw); err != nil {
		return err
	}
	if t, _ := raw.Lookup("tenant_id").StringValueOK(); t != tenant {
		return models.ErrNotFound
	}
	if err := bson.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s %s: %w", coll, id, err)
	}
	return nil
}

// Find runs q on coll and decodes the matching records into out (a pointer to a slice).
func (s *Store) Find(ctx context.Context, coll string, q models.Query, out any) error {
	var docs []bson.Raw
	if ok, err := s.findDirect(ctx, coll, q, func(doc bson.Raw) error {
		docs = append(docs, doc)
		return nil
	}); ok {
		if err != nil {
			return err
		}
		return decodeAll(docs, out, coll, q.Tenant)
	}
	filter, opts := findArgs(q)
	if err := s.findAll(ctx, coll, filter, opts, out); err != nil {
		return fmt.Errorf("find %s of tenant %s: %w", coll, q.Tenant, err)
	}
	return nil
}

// Each runs q as one query and calls each with a decoder for every record,
// as the cursor brings them: for reading a whole selection (an export) in one
// pass, where paging would run the query once per page. With q.SortField
// empty the records come in no particular order, which lets the engine stream
// them instead of sorting first.
func (s *Store) Each(ctx context.Context, coll string, q models.Query, each func(decode func(out any) error) error) error {
	if ok, err := s.eachDirect(ctx, coll, q, each); ok {
		return err
	}
	filter, opts := findArgs(q)
	if q.SortField == "" {
		opts.SetSort(nil)
	}
	cur, err := s.coll(coll).Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("read %s of tenant %s: %w", coll, q.Tenant, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if err := each(cur.Decode); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read %s of tenant %s: %w", coll, q.Tenant, err)
	}
	return nil
}

// eachDirect is Each on the embedded engines (see readDecoding). ok is
// false when the query did not translate and nothing was read.
func (s *Store) eachDirect(ctx context.Context, coll string, q models.Query, each func(decode func(out any) error) error) (ok bool, err error) {
	err = readDecoding(ctx, func(fn func(bson.Raw) error) error {
		var readErr error
		if s.sqliteDir != "" && q.Limit <= 0 {
			ok, readErr = s.findInChunks(ctx, coll, q, fn)
		} else {
			ok, readErr = s.findDirect(ctx, coll, q, fn)
		}
		return readErr
	}, each)
	return ok, err
}

// eachChunk is how many records a read of a whole selection takes per
// statement on SQLite (see findInChunks).
const eachChunk = 2000

// findInChunks is findDirect of every record q selects, eachChunk records
// a statement, each after the last of the one before in q's order (by id
// where q has no sort). Why: a statement is a read transaction, and SQLite
// checkpoints no page of the log past the oldest one still open. One
// statement for a whole export held the log for the export's length (10
// seconds and more at 100,000 customers); exports back to back held it
// always, and the log grew by every write meanwhile (2.2 GB in a minute of
// creates), which slowed every read and write that looked a page up in it.
// Records changed between two chunks come as they are when their chunk is
// read, as with a cursor of MongoDB's.
func (s *Store) findInChunks(ctx context.Context, coll string, q models.Query, fn func(bson.Raw) error) (bool, error) {
	chunk := q
	chunk.Limit = eachChunk
	for {
		n := 0
		var last bson.Raw
		ok, err := s.findDirect(ctx, coll, chunk, func(doc bson.Raw) error {
			n++
			last = doc
			return fn(doc)
		})
		if !ok && chunk.After != q.After {
			// Records were sent: falling back to the driver would send
			// them again.
			return true, fmt.Errorf("read %s of tenant %s after %s: %w", coll, q.Tenant, chunk.After.ID, embedded.ErrUntranslatable)
		}
		if !ok || err != nil || n < eachChunk {
			return ok, err
		}
		after, err := positionOf(last, q.SortField)
		if err != nil {
			return true, fmt.Errorf("read %s of tenant %s: %w", coll, q.Tenant, err)
		}
		chunk.After = after
	}
}

// positionOf is the list position of doc in the order of sortField (by id
// where it is empty), as a page's cursor gives it: dates as times, numbers
// as float64, a missing or null value as nil.
func positionOf(doc bson.Raw, sortField string) (*models.ListPosition, error) {
	id, ok := doc.Lookup("_id").StringValueOK()
	if !ok {
		return nil, errors.New("a record without a string _id")
	}
	p := &models.ListPosition{ID: id}
	if sortField == "" || sortField == "_id" {
		return p, nil
	}
	v, err := doc.LookupErr(strings.Split(sortField, ".")...)
	if err != nil {
		return p, nil // missing: ordered as null
	}
	switch v.Type {
	case bson.TypeDateTime:
		p.Value = v.Time().UTC()
	case bson.TypeString:
		p.Value = v.StringValue()
	case bson.TypeDouble:
		p.Value = v.Double()
	case bson.TypeInt32, bson.TypeInt64:
		p.Value = float64(v.AsInt64())
	case bson.TypeNull:
	default:
		return nil, fmt.Errorf("record %s: cannot continue after a %s of type %s", id, sortField, v.Type)
	}
	return p, nil
}

// readDecoding runs read, which calls fn with each stored document it
// converts to BSON, in a goroutine of its own, and calls each with a decoder
// of every document in this one, a few hundred documents apart at most. The
// two halves cost about the same (an export's rows, and a pull's, went at
// the speed of both one after the other); on two cores they overlap.
func readDecoding(ctx context.Context, read func(fn func(bson.Raw) error) error, each func(decode func(out any) error) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	docs := make(chan bson.Raw, 256)
	var readErr error
	go func() {
		defer close(docs)
		readErr = read(func(doc bson.Raw) error {
			select {
			case docs <- doc:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var eachErr error
	for doc := range docs {
		if eachErr == nil {
			if eachErr = each(func(out any) error { return bson.Unmarshal(doc, out) }); eachErr != nil {
				cancel() // the reader stops at its next document
			}
		}
	}
	// docs is closed: the reader has returned, and readErr is set.
	if eachErr != nil {
		return eachErr
	}
	return readErr
}

// findArgs turns a Query into a filter and find options.
func findArgs(q models.Query) (bson.D, *options.FindOptions) {
	filter := bson.D{{Key: "tenant_id", Value: q.Tenant}}
	if !q.WithDeleted {
		filter = append(filter, bson.E{Key: "deleted_at", Value: nil})
	}
	var and bson.A
	// Plain equalities on top-level fields go to the top of the filter: FerretDB
	// on PostgreSQL pushes exactly those down to SQL (a rep's own records, one
	// customer's records, an exact phone), instead of decoding every document.
	topLevel := func(field string, value any) bool {
		if strings.Contains(field, ".") || slices.ContainsFunc(filter, func(e bson.E) bool { return e.Key == field }) {
			return false
		}
		filter = append(filter, bson.E{Key: field, Value: value})
		return true
	}
	switch sc := q.Scope; {
	case !sc.All && q.OrAssignee == "" && !sc.Pool && len(sc.TeamIDs) == 0 && len(sc.OwnerIDs) == 1:
		topLevel("owner_id", sc.OwnerIDs[0])
	default:
		if vis := scopeFilter(q.Scope, q.OrAssignee); vis != nil {
			and = append(and, vis)
		}
	}
	for _, c := range q.Conds {
		if _, scalar := c.Value.(string); c.Op == models.OpEq && scalar && topLevel(c.Field, c.Value) {
			continue
		}
		and = append(and, condFilter(c))
	}
	sortField := q.SortField
	if sortField == "" {
		sortField = "_id"
	}
	dir, cmp := 1, "$gt"
	if q.Desc {
		dir, cmp = -1, "$lt"
	}
	if q.After != nil {
		switch {
		case sortField == "_id":
			and = append(and, bson.D{{Key: "_id", Value: bson.D{{Key: cmp, Value: q.After.ID}}}})
		case q.After.Value == nil:
			// A record without the sort field sorts first ascending and last
			// descending: the next page goes on through those without it,
			// and ascending then to every record that has it.
			or := bson.A{bson.D{{Key: sortField, Value: nil}, {Key: "_id", Value: bson.D{{Key: cmp, Value: q.After.ID}}}}}
			if !q.Desc {
				or = append(or, bson.D{{Key: sortField, Value: bson.D{{Key: "$ne", Value: nil}}}})
			}
			and = append(and, bson.D{{Key: "$or", Value: or}})
		default:
			or := bson.A{
				bson.D{{Key: sortField, Value: bson.D{{Key: cmp, Value: q.After.Value}}}},
				bson.D{{Key: sortField, Value: q.After.Value}, {Key: "_id", Value: bson.D{{Key: cmp, Value: q.After.ID}}}},
			}
			if q.Desc {
				or = append(or, bson.D{{Key: sortField, Value: nil}})
			}
			and = append(and, bson.D{{Key: "$or", Value: or}})
		}
	}
	if len(and) > 0 {
		filter = append(filter, bson.E{Key: "$and", Value: and})
	}
	sort := bson.D{{Key: sortField, Value: dir}}
	if sortField != "_id" {
		sort = append(sort, bson.E{Key: "_id", Value: dir})
	}
	opts := options.Find().SetSort(sort)
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	return filter, opts
}

// scopeFilter turns what an actor may see into a filter; nil means everything.
func scopeFilter(sc models.Scope, orAssignee string) bson.D {
	if sc.All {
		return nil
	}
	var or bson.A
	if len(sc.OwnerIDs) > 0 {
		or = append(or, bson.D{{Key: "owner_id", Value: bson.D{{Key: "$in", Value: sc.OwnerIDs}}}})
	}
	if len(sc.TeamIDs) > 0 {
		or = append(or, bson.D{{Key: "team_id", Value: bson.D{{Key: "$in", Value: sc.TeamIDs}}}})
	}
	if sc.Pool {
		or = append(or, bson.D{{Key: "owner_id", Value: ""}})
	}
	if orAssignee != "" {
		or = append(or, bson.D{{Key: "assignee_id", Value: orAssignee}})
	}
	if len(or) == 0 {
		return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{}}}}} // sees nothing
	}
	return bson.D{{Key: "$or", Value: or}}
}

func condFilter(c models.Cond) bson.D {
	switch c.Op {
	case models.OpContains:
		s, _ := c.Value.(string)
		// The services refuse text that is not UTF-8; should one reach here,
		// the regexp engines (MongoDB's PCRE, FerretDB's Go regexp) fail on it,
		// so it is made valid rather than turned into a server error.
		s = strings.ToValidUTF8(s, "\uFFFD")
		return bson.D{{Key: c.Field, Value: bson.D{{Key: "$regex", Value: regexp.QuoteMeta(s)}, {Key: "$options", Value: "i"}}}}
	case models.OpMissing:
		return bson.D{{Key: c.Field, Value: nil}}
	default:
		return bson.D{{Key: c.Field, Value: bson.D{{Key: string(c.Op), Value: c.Value}}}}
	}
}

// Audit lists audit entries of tenant, newest first; recordID and coll narrow it.
// It is a list query (models.Query) on every engine, read from the audit
// indexes of queryIndexes: through FerretDB a page of the newest entries
// read and sorted every entry of every tenant (115 s for 370,000 entries).
func (s *Store) Audit(ctx context.Context, tenant, coll, recordID string, before *time.Time, limit int) ([]models.AuditEntry, error) {
	q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, WithDeleted: true, SortField: "at", Desc: true, Limit: limit}
	if coll != "" {
		q.Conds = append(q.Conds, models.Cond{Field: "collection", Op: models.OpEq, Value: coll})
	}
	if recordID != "" {
		q.Conds = append(q.Conds, models.Cond{Field: "record_id", Op: models.OpEq, Value: recordID})
	}
	if before != nil {
		q.Conds = append(q.Conds, models.Cond{Field: "at", Op: models.OpLt, Value: *before})
	}
	entries := []models.AuditEntry{}
	if err := s.Find(ctx, collAudit, q, &entries); err != nil {
		return nil, fmt.Errorf("list audit of tenant %s: %w", tenant, err)
	}
	return entries, nil
}

// ClaimCustomerNumber records that sequence seq of tenant is used. It returns
// models.ErrConflict when it was used before: the unique _id tenant/seq is the
// uniqueness guarantee of customer numbers, and claims are never deleted, so a
// number is never reused, also after its customer is deleted or merged away.
func (s *Store) ClaimCustomerNumber(ctx context.Context, tenant string, seq int64, number, customerID string) error {
	if err := s.insert(ctx, collCustomerNumbers, numberClaim(tenant, seq, number, customerID)); err != nil {
		return fmt.Errorf("claim customer number %s: %w", number, err)
	}
	return nil
}

// numberClaimID is the _id of the claim of sequence seq of tenant.
func numberClaimID(tenant string, seq int64) string {
	return tenant + "/" + strconv.FormatInt(seq, 10)
}

// numberClaim is the document claiming sequence seq of tenant for number of
// customerID.
func numberClaim(tenant string, seq int64, number, customerID string) bson.D {
	return bson.D{
		{Key: "_id", Value: numberClaimID(tenant, seq)},
		{Key: "tenant_id", Value: tenant}, {Key: "seq", Value: seq},
		{Key: "number", Value: number}, {Key: "customer_id", Value: customerID},
	}
}

// ClaimCustomerNumbers claims sequences first, first+1… of tenant for
// numbers[i] of customerIDs[i] in one round trip, as ClaimCustomerNumber
// would one by one: for bulk loads such as a benchmark's seed. A sequence
// claimed before makes it fail, possibly after part of the claims were stored.
func (s *Store) ClaimCustomerNumbers(ctx context.Context, tenant string, first int64, numbers, customerIDs []string) error {
	docs := make([]any, len(numbers))
	for i, number := range numbers {
		docs[i] = numberClaim(tenant, first+int64(i), number, customerIDs[i])
	}
	if len(docs) == 0 {
		return nil
	}
	return s.insertMany(ctx, collCustomerNumbers, docs)
}

// HighestCustomerNumber returns the largest sequence claimed by tenant, or 0.
// The allocator resumes from it when its counter was lost. The embedded
// engines read it from the claims' (tenant_id, seq) index; MongoDB from
// tenant_seq.
func (s *Store) HighestCustomerNumber(ctx context.Context, tenant string) (int64, error) {
	if s.tables != nil {
		highest, err := s.tables.HighestSeq(ctx, collCustomerNumbers, tenant)
		if err != nil {
			return 0, fmt.Errorf("highest customer number of tenant %s: %w", tenant, err)
		}
		return highest, nil
	}
	var top []struct {
		Seq int64 `bson:"seq"`
	}
	opts := options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(1)
	if err := s.findAll(ctx, collCustomerNumbers, bson.D{{Key: "tenant_id", Value: tenant}}, opts, &top); err != nil {
		return 0, fmt.Errorf("highest customer number of tenant %s: %w", tenant, err)
	}
	if len(top) == 0 {
		return 0, nil
	}
	return top[0].Seq, nil
}

// UpdateSettings stores a tenant's CRM settings.
func (s *Store) UpdateSettings(ctx context.Context, tenant string, st models.Settings) error {
	res, err := s.coll(collTenants).UpdateOne(ctx, bson.D{{Key: "_id", Value: tenant}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "settings", Value: st}}}})
	if err != nil {
		return fmt.Errorf("update settings of tenant %s: %w", tenant, err)
	}
	if res.MatchedCount == 0 {
		return models.ErrNotFound
	}
	return nil
}

// TenantsWithPoolReclaim lists the tenants whose settings return idle
// customers to the pool.
func (s *Store) TenantsWithPoolReclaim(ctx context.Context) ([]string, error) {
	var tenants []models.Tenant
	filter := bson.D{{Key: "settings.pool_reclaim_days", Value: bson.D{{Key: "$gt", Value: 0}}}}
	if err := s.findAll(ctx, collTenants, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}), &tenants); err != nil {
		return nil, fmt.Errorf("list tenants with pool reclaim: %w", err)
	}
	ids := make([]string, len(tenants))
	for i, t := range tenants {
		ids[i] = t.ID
	}
	return ids, nil
}

// Changes loads into out (a pointer to a slice of records) at most limit
// records of coll in tenant whose sync number is in (after, upTo], in number
// order, deleted ones included: what a pull reads. With a ChangeReader it
// reads from the (tenant_id, seq) index under the embedded engine; otherwise
// the query goes to MongoDB, which answers it from the tenant_seq index.
func (s *Store) Changes(ctx context.Context, coll, tenant string, after, upTo int64, limit int, out any) error {
	if s.tables == nil {
		q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, WithDeleted: true, SortField: "seq", Limit: limit,
			Conds: []models.Cond{{Field: "seq", Op: models.OpGt, Value: after}, {Field: "seq", Op: models.OpLte, Value: upTo}}}
		return s.Find(ctx, coll, q, out)
	}
	docs, err := s.tables.Changes(ctx, coll, tenant, after, upTo, limit)
	if err != nil {
		return err
	}
	return decodeAll(docs, out, coll, tenant)
}

// seenChangesReader reads what ChangesSeen asks without the query engine
// (embedded.Tables).
type seenChangesReader interface {
	ChangesSeen(ctx context.Context, coll string, fields embedded.Fields, tenant string, after, upTo int64, limit int, sc models.Scope, orAssignee string, live bool, fn func(bson.Raw) error) error
}

// ChangesSeen is Changes narrowed to what an actor's pull may send: with
// live, the live records that sc (or, with orAssignee, an assignment) lets
// them see (a first sync sends nothing else); without, also deleted ones and
// those that had an earlier owner. It may return more (a caller decides
// each record's fate), never fewer. On the embedded engines the (tenant_id,
// seq) index is read in order and each entry's record tested before it is
// decoded; through the driver, MongoDB filters that index's records (live)
// or returns them all. A record's field_seqs and field_devices may hold the
// id's entries alone, all a pull reads of them: the embedded engines leave
// out the rest as they read.
func (s *Store) ChangesSeen(ctx context.Context, coll, tenant string, after, upTo int64, limit int, sc models.Scope, orAssignee string, live bool, out any) error {
	if s.tables == nil && live {
		q := models.Query{Tenant: tenant, Scope: sc, OrAssignee: orAssignee, SortField: "seq", Limit: limit,
			Conds: []models.Cond{{Field: "seq", Op: models.OpGt, Value: after}, {Field: "seq", Op: models.OpLte, Value: upTo}}}
		return s.Find(ctx, coll, q, out)
	}
	reader, ok := s.tables.(seenChangesReader)
	fields, known := queryFields[coll]
	if !ok || !known {
		return s.Changes(ctx, coll, tenant, after, upTo, limit, out)
	}
	list := reflect.ValueOf(out).Elem()
	list.Set(reflect.MakeSlice(list.Type(), 0, min(limit, 1024)))
	return readDecoding(ctx, func(fn func(bson.Raw) error) error {
		ctx, done := s.observe(ctx, "direct_changes")
		err := reader.ChangesSeen(ctx, coll, fields, tenant, after, upTo, limit, sc, orAssignee, live, fn)
		done(err)
		return err
	}, func(decode func(out any) error) error {
		list.Set(reflect.Append(list, reflect.New(list.Type().Elem()).Elem()))
		if err := decode(list.Index(list.Len() - 1).Addr().Interface()); err != nil {
			return fmt.Errorf("decode a %s record of tenant %s: %w", coll, tenant, err)
		}
		return nil
	})
}

// decodeAll decodes docs into out, a pointer to a slice.
func decodeAll(docs []bson.Raw, out any, coll, tenant string) error {
	list := reflect.ValueOf(out).Elem()
	list.Set(reflect.MakeSlice(list.Type(), len(docs), len(docs)))
	for i, doc := range docs {
		if err := bson.Unmarshal(doc, list.Index(i).Addr().Interface()); err != nil {
			return fmt.Errorf("decode a %s record of tenant %s: %w", coll, tenant, err)
		}
	}
	return nil
}

// SyncedCollections are the record collections devices sync.
var SyncedCollections = append(append([]string{Customers}, ChildCollections...), Conflicts, Notifications)

// HighestSeq returns the highest sync number stored in any record of tenant,
// or 0. The sync sequencer starts above it when Redis has no counter.
func (s *Store) HighestSeq(ctx context.Context, tenant string) (int64, error) {
	var highest int64
	for _, coll := range SyncedCollections {
		if s.tables != nil {
			n, err := s.tables.HighestSeq(ctx, coll, tenant)
			if err != nil {
				return 0, err
			}
			highest = max(highest, n)
			continue
		}
		var top []struct {
			Seq int64 `bson:"seq"`
		}
		opts := options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(1).SetProjection(bson.D{{Key: "seq", Value: 1}})
		if err := s.findAll(ctx, coll, bson.D{{Key: "tenant_id", Value: tenant}}, opts, &top); err != nil {
			return 0, fmt.Errorf("highest sync number of %s in tenant %s: %w", coll, tenant, err)
		}
		if len(top) > 0 {
			highest = max(highest, top[0].Seq)
		}
	}
	return highest, nil
}

// createSyncIndexes is migration 3: pulls read a tenant's records by sync number.
func createSyncIndexes(ctx context.Context, s *Store) error {
	for _, coll := range SyncedCollections {
		if err := s.ensureIndexes(ctx, coll, index{"tenant_seq", asc("tenant_id", "seq"), false}); err != nil {
			return err
		}
	}
	return nil
}

// createCRMIndexes is migration 2. Lists filter by tenant, then owner or team or
// customer, so every index starts with tenant_id (see createAccountIndexes).
func createCRMIndexes(ctx context.Context, s *Store) error {
	owned := []index{
		{"tenant_owner", asc("tenant_id", "owner_id"), false},
		{"tenant_team", asc("tenant_id", "team_id"), false},
	}
	child := append([]index{{"tenant_customer", asc("tenant_id", "customer_id"), false}}, owned...)
	steps := []struct {
		coll    string
		indexes []index
	}{
		{Customers, append([]index{
			{"tenant_number", asc("tenant_id", "number"), false},
			{"tenant_dedupe", asc("tenant_id", "dedupe_keys"), false},
			{"tenant_search", asc("tenant_id", "search_keys"), false},
			{"tenant_updated", asc("tenant_id", "updated_at"), false},
		}, owned...)},
		{Contacts, child},
		{Interactions, append([]index{{"tenant_occurred", asc("tenant_id", "occurred_at"), false}}, child...)},
		{Tasks, append([]index{{"tenant_assignee_due", asc("tenant_id", "assignee_id", "due_at"), false}}, child...)},
		{Orders, child},
		{Payments, append([]index{{"tenant_order", asc("tenant_id", "order_id"), false}}, child...)},
		{Tickets, append([]index{{"tenant_assignee_status", asc("tenant_id", "assignee_id", "status"), false}}, child...)},
		{Surveys, child},
		{LoyaltyEntries, child},
		{Conflicts, append([]index{{"tenant_record", asc("tenant_id", "record_id"), false}}, owned...)},
		{collAudit, []index{{"tenant_at", asc("tenant_id", "at"), false}, {"tenant_record", asc("tenant_id", "record_id"), false}}},
		{collCustomerNumbers, []index{{"tenant_seq", asc("tenant_id", "seq"), false}}},
	}
	for _, st := range steps {
		if err := s.ensureIndexes(ctx, st.coll, st.indexes...); err != nil {
			return err
		}
	}
	return nil
}

// TenantIDs lists every tenant, for jobs that run per tenant.
func (s *Store) TenantIDs(ctx context.Context) ([]string, error) {
	var tenants []models.Tenant
	if err := s.findAll(ctx, collTenants, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}), &tenants); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	ids := make([]string, len(tenants))
	for i, t := range tenants {
		ids[i] = t.ID
	}
	return ids, nil
}

// Tombstones returns the ids and the highest sync number of tenant's records
// in coll deleted before `before`, at most limit of them, the longest
// deleted first. The query is one of the list queries (models.Query), so
// it is read from the (tenant_id, deleted_at) index (purge_deleted of
// queryIndexes) on every engine: through FerretDB it read every record of
// the collection, for minutes at 500,000 interactions, and held the SQLite
// log from being checkpointed all that time.
func (s *Store) Tombstones(ctx context.Context, coll, tenant string, before time.Time, limit int) ([]string, int64, error) {
	var docs []struct {
		ID  string `bson:"_id"`
		Seq int64  `bson:"seq"`
	}
	q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, WithDeleted: true, SortField: "deleted_at", Limit: limit,
		Conds: []models.Cond{{Field: "deleted_at", Op: models.OpLt, Value: before}}}
	if err := s.Find(ctx, coll, q, &docs); err != nil {
		return nil, 0, fmt.Errorf("find tombstones of %s in tenant %s: %w", coll, tenant, err)
	}
	ids := make([]string, len(docs))
	var highest int64
	for i, d := range docs {
		ids[i] = d.ID
		highest = max(highest, d.Seq)
	}
	return ids, highest, nil
}

// PurgeRecords deletes records of tenant in coll for good, by id.
func (s *Store) PurgeRecords(ctx context.Context, coll, tenant string, ids []string) error {
	for _, id := range ids {
		// By _id alone, the filter FerretDB pushes down; the ids come from a
		// query of this tenant (Tombstones).
		if err := s.deleteByID(ctx, coll, id); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
	}
	return nil
}

// SyncFloor returns the sync number below which tenant's deletions may have
// been purged: a device whose cursor is below it must sync again from scratch.
func (s *Store) SyncFloor(ctx context.Context, tenant string) (int64, error) {
	var t struct {
		Floor int64 `bson:"sync_floor"`
	}
	if err := s.findByID(ctx, collTenants, tenant, &t); err != nil {
		return 0, fmt.Errorf("sync floor of tenant %s: %w", tenant, err)
	}
	return t.Floor, nil
}

// RaiseSyncFloor moves tenant's sync floor up to floor (never down). It is
// written before the tombstones it covers are purged, so no pull can miss them
// without being told to start over.
func (s *Store) RaiseSyncFloor(ctx context.Context, tenant string, floor int64) error {
	current, err := s.SyncFloor(ctx, tenant)
	if err != nil || current >= floor {
		return err
	}
	_, err = s.coll(collTenants).UpdateOne(ctx, bson.D{{Key: "_id", Value: tenant}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "sync_floor", Value: floor}}}})
	if err != nil {
		return fmt.Errorf("raise sync floor of tenant %s: %w", tenant, err)
	}
	return nil
}

// AuditOf returns every audit entry of the records with the given ids, oldest
// first: the version history of one customer and its records (an access request).
func (s *Store) AuditOf(ctx context.Context, tenant string, recordIDs []string) ([]models.AuditEntry, error) {
	entries := []models.AuditEntry{}
	for chunk := range slices.Chunk(recordIDs, 500) {
		q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, WithDeleted: true,
			Conds: []models.Cond{{Field: "record_id", Op: models.OpIn, Value: chunk}}}
		var some []models.AuditEntry
		if err := s.Find(ctx, collAudit, q, &some); err != nil {
			return nil, fmt.Errorf("audit of %d records of tenant %s: %w", len(chunk), tenant, err)
		}
		entries = append(entries, some...)
	}
	slices.SortFunc(entries, func(a, b models.AuditEntry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return entries, nil
}

// ScrubAudit replaces with replacement the old and new values of the fields
// that fields names for each collection, in every audit entry of the records
// with the given ids, and returns how many entries it rewrote. An erasure
// calls it after erasing: the version history must not keep what was erased.
func (s *Store) ScrubAudit(ctx context.Context, tenant string, recordIDs []string, fields map[string][]string, replacement any) (int, error) {
	entries, err := s.AuditOf(ctx, tenant, recordIDs)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		scrubbed := false
		for i, c := range e.Changes {
			if !slices.Contains(fields[e.Collection], c.Field) {
				continue
			}
			if !reflect.DeepEqual(c.Old, replacement) || !reflect.DeepEqual(c.New, replacement) {
				e.Changes[i].Old, e.Changes[i].New = replacement, replacement
				scrubbed = true
			}
		}
		if !scrubbed {
			continue
		}
		if _, err := s.coll(collAudit).ReplaceOne(ctx, bson.D{{Key: "_id", Value: e.ID}}, e); err != nil {
			return n, fmt.Errorf("scrub audit entry %s: %w", e.ID, err)
		}
		n++
	}
	return n, nil
}

// LogEvent writes an audit entry for an action that is not a record write,
// such as an export: coll names the kind of event and id the event, so the
// entry's id is coll/id/1. It returns models.ErrConflict if that id was logged.
func (s *Store) LogEvent(ctx context.Context, e models.AuditEntry) error {
	e.ID = auditID(e.Collection, e.RecordID, 1)
	e.Version = 1
	if _, err := s.coll(collAudit).InsertOne(ctx, e); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("audit event %s: %w", e.ID, models.ErrConflict)
		}
		return fmt.Errorf("audit event %s: %w", e.ID, err)
	}
	return nil
}

// collSyncReservations holds, per tenant (_id), the highest sync number
// reserved: every number the sequencer hands out is reserved here first, so the
// counter in Redis can be rebuilt above every number ever given (see package
// cursor).
const collSyncReservations = "sync_reservations"

// SyncReserved returns the highest sync number reserved for tenant, or 0.
func (s *Store) SyncReserved(ctx context.Context, tenant string) (int64, error) {
	var r struct {
		Reserved int64 `bson:"reserved"`
	}
	err := s.findByID(ctx, collSyncReservations, tenant, &r)
	if errors.Is(err, models.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sync reservation of tenant %s: %w", tenant, err)
	}
	return r.Reserved, nil
}

// ReserveSync raises tenant's sync reservation to at least upTo, never
// lowering it, and returns the reservation after the raise.
func (s *Store) ReserveSync(ctx context.Context, tenant string, upTo int64) (int64, error) {
	_, err := s.coll(collSyncReservations).UpdateOne(ctx, bson.D{{Key: "_id", Value: tenant}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "reserved", Value: upTo}}}}, options.Update().SetUpsert(true))
	if err != nil {
		return 0, fmt.Errorf("reserve sync numbers up to %d for tenant %s: %w", upTo, tenant, err)
	}
	return s.SyncReserved(ctx, tenant)
}

// AdvanceSyncEpoch starts a new sync epoch in every tenant, after the
// database was restored from a backup (or otherwise rewound), and answers how
// many tenants it moved. now is the wall clock at the restore.
//
// A device's cursor is a plain number (what WatermelonDB requires), with no
// epoch of its own: a pull answers 410 when the cursor is below the tenant's
// sync floor or above its watermark. So the new epoch is a floor, and it must
// be above every number any earlier lineage of the database handed out: not
// only the backup's, but those of every earlier restore of the same backup,
// which handed out numbers the backup never saw and which devices still hold.
// The database cannot know those (each restore starts from the same files),
// so a floor derived from the backup alone (its reservation plus a gap, as
// before) came out the same on a second restore of it, and a device of the
// first restore's lineage was served an incomplete page once new writes
// passed its cursor.
//
// The floor is the restore's time in microseconds since 1970. Numbers grow
// by one a change, and by at most a reservation block (1,024) a restart,
// which takes longer than 1,024 µs; so a lineage started at a floor taken
// from the clock stays below the clock unless it makes a million changes a
// second for as long as it runs, and one started from small numbers (a
// database never restored, or restored by the earlier rule, 2^40 a restore)
// is far below it. Every number handed out before now, by any lineage, is
// then below now, and two restores at different times get different floors,
// the later one higher.
// (Skewed clocks cost only margin: a restore whose clock is an hour behind
// an earlier one's is still above that lineage until it made 3.6·10^9
// changes.) Microseconds since 1970 stay below 2^53, where a JavaScript
// number stops being exact, until the year 2255.
//
// A tenant whose reservation is at or above now (a clock set far back) is
// refused: the restore cannot pick a floor that is above what that
// reservation's lineages may have handed out.
func (s *Store) AdvanceSyncEpoch(ctx context.Context, now time.Time) (int, error) {
	tenants, err := s.TenantIDs(ctx)
	if err != nil {
		return 0, err
	}
	epoch := now.UnixMicro()
	for _, tenant := range tenants {
		reserved, err := s.SyncReserved(ctx, tenant)
		if err != nil {
			return 0, err
		}
		if reserved == 0 {
			if reserved, err = s.HighestSeq(ctx, tenant); err != nil {
				return 0, err
			}
		}
		if reserved >= epoch {
			return 0, fmt.Errorf("new sync epoch of tenant %s: the clock (%s, %d µs) is behind its sync numbers (%d): set the clock right and run it again",
				tenant, now.UTC().Format(time.RFC3339), epoch, reserved)
		}
		if _, err := s.ReserveSync(ctx, tenant, epoch); err != nil {
			return 0, err
		}
		if err := s.RaiseSyncFloor(ctx, tenant, epoch); err != nil {
			return 0, err
		}
	}
	return len(tenants), nil
}
