package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/models"
)

// collCustomerKeys indexes customers by duplicate key (a normalized phone,
// e-mail, company…): one document per tenant and key, found by _id, listing
// the customers that have the key.
//
// Why a collection of our own rather than the multikey index on
// customers.dedupe_keys: the embedded FerretDB cannot use an index for that
// query and decodes every customer of the database on each create (about
// 0.45 ms each: a create at 2,000 customers took 0.9 s, and an import of
// 100,000 rows would never end). A read by _id is fast on every engine.
//
// The index can only be wrong in one safe direction: lookups load the
// customers it names and keep those that still have the key, so a stale id
// costs a read. Two writers changing one key's document at the same moment
// can lose one's id (FerretDB has no atomic read-modify-write); that
// customer is then not offered as a duplicate by that key until the index is
// rebuilt (migration 7 builds it; RebuildCustomerKeys rebuilds it). Within
// one process keyLocks rules that out; writers in two replicas sharing a
// database can still race so.
const collCustomerKeys = "customer_keys"

type customerKeyDoc struct {
	ID          string   `bson:"_id"`
	TenantID    string   `bson:"tenant_id"`
	CustomerIDs []string `bson:"customer_ids"`
}

func customerKeyID(tenant, key string) string { return tenant + "|" + key }

// IndexCustomerKeys records that customer id of tenant now has the duplicate
// keys now instead of before (nil for a new or a deleted customer). On the
// embedded engines every key document changes in one transaction.
func (s *Store) IndexCustomerKeys(ctx context.Context, tenant, id string, before, now []string) error {
	defer s.keyLocks.lock(keyNames(tenant, before, now))()
	if s.byID != nil {
		err := s.retryKeyRace(ctx, func() error {
			writes, err := s.keyWrites(ctx, tenant, id, before, now)
			if err != nil {
				return err
			}
			return s.writeDirect(ctx, writes...)
		})
		if !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	// Through the driver, one key document after another.
	writes, err := s.keyWrites(ctx, tenant, id, before, now)
	if err != nil {
		return err
	}
	for _, w := range writes {
		doc := w.doc.(customerKeyDoc)
		if err := s.put(ctx, collCustomerKeys, doc.ID, doc); err != nil {
			return fmt.Errorf("customer key %s: %w", doc.ID, err)
		}
	}
	return nil
}

// InsertCustomer stores new customer c at version 1 with its audit entry,
// indexes its duplicate keys and, with seq above 0, claims its number as
// sequence seq (see ClaimCustomerNumber): on the embedded engines in one
// transaction (all or none, one commit where a write per key document and
// the claim took a commit each, and most of a create's time), through the
// driver one after another. models.ErrConflict means c's id is taken;
// ErrNumberTaken that sequence seq was claimed before (and nothing is
// stored).
func (s *Store) InsertCustomer(ctx context.Context, c *models.Customer, entry models.AuditEntry, keys []string, seq int64) error {
	if s.byID == nil {
		return s.insertCustomerByDriver(ctx, c, entry, keys, seq)
	}
	fillEntry(&entry, Customers, &c.Meta)
	defer s.keyLocks.lock(keyNames(c.TenantID, nil, keys))()
	err := s.retryKeyRace(ctx, func() error {
		writes, err := s.keyWrites(ctx, c.TenantID, c.ID, nil, keys)
		if err != nil {
			return err
		}
		writes = append(writes, direct{coll: collAudit, doc: entry}, direct{coll: Customers, doc: c})
		if seq > 0 {
			writes = append(writes, direct{coll: collCustomerNumbers, doc: numberClaim(c.TenantID, seq, c.Number, c.ID)})
		}
		err = s.writeDirect(ctx, writes...)
		if !errors.Is(err, models.ErrConflict) {
			return err
		}
		// Which insert was refused: the customer's id taken is the
		// caller's to handle, like its number taken; a key document
		// inserted meanwhile is retried.
		if _, gerr := s.byID.Get(ctx, Customers, c.ID); !errors.Is(gerr, models.ErrNotFound) {
			return fmt.Errorf("%w: %w", errIDTaken, err)
		}
		if _, gerr := s.byID.Get(ctx, collAudit, entry.ID); !errors.Is(gerr, models.ErrNotFound) {
			return fmt.Errorf("%w: %w", errIDTaken, err)
		}
		if seq > 0 {
			if _, gerr := s.byID.Get(ctx, collCustomerNumbers, numberClaimID(c.TenantID, seq)); !errors.Is(gerr, models.ErrNotFound) {
				return fmt.Errorf("claim customer number %s: %w", c.Number, ErrNumberTaken)
			}
		}
		return err
	})
	if errors.Is(err, errors.ErrUnsupported) {
		return s.insertCustomerByDriver(ctx, c, entry, keys, seq)
	}
	if err != nil {
		return fmt.Errorf("insert %s %s: %w", Customers, c.ID, err)
	}
	return nil
}

// ErrNumberTaken refuses a customer number claimed before (see
// InsertCustomer).
var ErrNumberTaken = errors.New("customer number taken")

// insertCustomerByDriver is InsertCustomer one write after another.
func (s *Store) insertCustomerByDriver(ctx context.Context, c *models.Customer, entry models.AuditEntry, keys []string, seq int64) error {
	if seq > 0 {
		err := s.ClaimCustomerNumber(ctx, c.TenantID, seq, c.Number, c.ID)
		if errors.Is(err, models.ErrConflict) {
			return fmt.Errorf("claim customer number %s: %w", c.Number, ErrNumberTaken)
		}
		if err != nil {
			return err
		}
	}
	if err := s.Insert(ctx, Customers, &c.Meta, c, entry); err != nil {
		return err
	}
	return s.IndexCustomerKeys(ctx, c.TenantID, c.ID, nil, keys)
}

// errIDTaken marks a conflict retryKeyRace must not retry.
var errIDTaken = errors.New("id taken")

// retryKeyRace runs write again, up to three times in all, while it fails
// with models.ErrConflict: the key documents it read changed meanwhile (an
// insert of a key document another process inserted first). Within one
// process keyLocks rule that out; across replicas it is retried.
func (s *Store) retryKeyRace(ctx context.Context, write func() error) error {
	var err error
	for range 3 {
		err = write()
		if !errors.Is(err, models.ErrConflict) || errors.Is(err, errIDTaken) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return err
}

// keyWrites returns the writes of the key documents of tenant that change
// when customer id has keys now instead of before: an insert for a key
// document not stored yet, a replace for one stored.
func (s *Store) keyWrites(ctx context.Context, tenant, id string, before, now []string) ([]direct, error) {
	var writes []direct
	change := func(key string, edit func([]string) []string) error {
		doc := customerKeyDoc{ID: customerKeyID(tenant, key), TenantID: tenant}
		err := s.findByID(ctx, collCustomerKeys, doc.ID, &doc)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("customer key %s: %w", key, err)
		}
		stored := err == nil
		n := len(doc.CustomerIDs)
		doc.CustomerIDs = edit(doc.CustomerIDs)
		if len(doc.CustomerIDs) == n && stored {
			return nil
		}
		writes = append(writes, direct{coll: collCustomerKeys, doc: doc, replace: stored})
		return nil
	}
	for _, k := range now {
		if !slices.Contains(before, k) {
			if err := change(k, func(ids []string) []string { return withID(ids, id) }); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range before {
		if !slices.Contains(now, k) {
			if err := change(k, func(ids []string) []string { return withoutID(ids, id) }); err != nil {
				return nil, err
			}
		}
	}
	return writes, nil
}

func withID(ids []string, id string) []string {
	if slices.Contains(ids, id) {
		return ids
	}
	return append(ids, id)
}

func withoutID(ids []string, id string) []string {
	return slices.DeleteFunc(ids, func(x string) bool { return x == id })
}

// keyNames names the key documents of tenant that before and now touch,
// for keyLocks.
func keyNames(tenant string, before, now []string) []string {
	names := make([]string, 0, len(before)+len(now))
	for _, k := range append(slices.Clone(before), now...) {
		names = append(names, customerKeyID(tenant, k))
	}
	return names
}

// keyLocks lets one writer at a time of this process read and write a key
// document, so that two customers created or changed at once with a key in
// common both end up in its list (a read-modify-write of a document, which
// FerretDB cannot make atomic).
type keyLocks struct {
	mu   sync.Mutex
	held map[string]*heldKey
}

type heldKey struct {
	sync.Mutex
	users int
}

// lock takes the locks of names, in sorted order so that two writers never
// wait for each other, and returns the function that releases them.
func (l *keyLocks) lock(names []string) (unlock func()) {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	taken := make([]*heldKey, len(names))
	for i, name := range names {
		l.mu.Lock()
		if l.held == nil {
			l.held = map[string]*heldKey{}
		}
		h := l.held[name]
		if h == nil {
			h = &heldKey{}
			l.held[name] = h
		}
		h.users++
		l.mu.Unlock()
		h.Lock()
		taken[i] = h
	}
	return func() {
		for i, h := range taken {
			h.Unlock()
			l.mu.Lock()
			if h.users--; h.users == 0 {
				delete(l.held, names[i])
			}
			l.mu.Unlock()
		}
	}
}

// InsertCustomerKeys indexes customers of tenant that are new to the index,
// a thousand keys a round trip, for bulk loads such as a benchmark's seed,
// where IndexCustomerKeys' read and write per key would take minutes. ids
// maps each lookup key to every customer that has it; a key already indexed
// for tenant makes the insert fail, so a key must not be split across calls.
func (s *Store) InsertCustomerKeys(ctx context.Context, tenant string, ids map[string][]string) error {
	docs := make([]any, 0, min(len(ids), 1000))
	for key, customers := range ids {
		docs = append(docs, customerKeyDoc{ID: customerKeyID(tenant, key), TenantID: tenant, CustomerIDs: customers})
		if len(docs) == cap(docs) {
			if err := s.insertMany(ctx, collCustomerKeys, docs); err != nil {
				return err
			}
			docs = docs[:0]
		}
	}
	if len(docs) == 0 {
		return nil
	}
	return s.insertMany(ctx, collCustomerKeys, docs)
}

// CustomersSharingKeys returns up to limit live customers of tenant, other
// than exceptID, that have any of keys (models.Customer.LookupKeys).
func (s *Store) CustomersSharingKeys(ctx context.Context, tenant string, keys []string, exceptID string, limit int) ([]models.Customer, error) {
	var out []models.Customer
	checked := map[string]bool{exceptID: true}
	for _, key := range keys {
		var doc customerKeyDoc
		err := s.findByID(ctx, collCustomerKeys, customerKeyID(tenant, key), &doc)
		if errors.Is(err, models.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("customers with key %s: %w", key, err)
		}
		for _, id := range doc.CustomerIDs {
			if checked[id] || len(out) >= limit {
				continue
			}
			checked[id] = true
			var c models.Customer
			err := s.findByID(ctx, Customers, id, &c)
			if errors.Is(err, models.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if c.TenantID == tenant && !c.Deleted() && slices.ContainsFunc(c.LookupKeys(), func(k string) bool { return slices.Contains(keys, k) }) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// RebuildCustomerKeys indexes every live customer's lookup keys, for all
// tenants (migrations 7 and 8; safe to run again). It returns the customers indexed.
func (s *Store) RebuildCustomerKeys(ctx context.Context) (int, error) {
	n, after := 0, ""
	for {
		var page []models.Customer
		filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}, {Key: "deleted_at", Value: nil}}
		opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(500).
			SetProjection(bson.D{{Key: "tenant_id", Value: 1}, {Key: "dedupe_keys", Value: 1},
				{Key: "number", Value: 1}, {Key: "external_ref", Value: 1}})
		if err := s.findAll(ctx, Customers, filter, opts, &page); err != nil {
			return n, fmt.Errorf("rebuild customer keys: %w", err)
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, c := range page {
			if err := s.IndexCustomerKeys(ctx, c.TenantID, c.ID, nil, c.LookupKeys()); err != nil {
				return n, err
			}
			n++
		}
		after = page[len(page)-1].ID
	}
}

func indexCustomerKeys(ctx context.Context, s *Store) error {
	// Created here, not on first insert: the embedded SQLite's _id index is
	// added at start-up to the collections that exist then.
	if err := s.ensureCollection(ctx, collCustomerKeys); err != nil {
		return err
	}
	_, err := s.RebuildCustomerKeys(ctx)
	return err
}
