package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
// rebuilt (migration 7 builds it; RebuildCustomerKeys rebuilds it).
const collCustomerKeys = "customer_keys"

type customerKeyDoc struct {
	ID          string   `bson:"_id"`
	TenantID    string   `bson:"tenant_id"`
	CustomerIDs []string `bson:"customer_ids"`
}

func customerKeyID(tenant, key string) string { return tenant + "|" + key }

// IndexCustomerKeys records that customer id of tenant now has the duplicate
// keys now instead of before (nil for a new or a deleted customer).
func (s *Store) IndexCustomerKeys(ctx context.Context, tenant, id string, before, now []string) error {
	for _, k := range now {
		if !slices.Contains(before, k) {
			if err := s.changeKeyDoc(ctx, tenant, k, func(ids []string) []string {
				if slices.Contains(ids, id) {
					return ids
				}
				return append(ids, id)
			}); err != nil {
				return err
			}
		}
	}
	for _, k := range before {
		if !slices.Contains(now, k) {
			if err := s.changeKeyDoc(ctx, tenant, k, func(ids []string) []string {
				return slices.DeleteFunc(ids, func(x string) bool { return x == id })
			}); err != nil {
				return err
			}
		}
	}
	return nil
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

func (s *Store) changeKeyDoc(ctx context.Context, tenant, key string, change func([]string) []string) error {
	doc := customerKeyDoc{ID: customerKeyID(tenant, key), TenantID: tenant}
	if err := s.findByID(ctx, collCustomerKeys, doc.ID, &doc); err != nil && !errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("customer key %s: %w", key, err)
	}
	before := len(doc.CustomerIDs)
	doc.CustomerIDs = change(doc.CustomerIDs)
	if len(doc.CustomerIDs) == before && before > 0 {
		return nil
	}
	if err := s.put(ctx, collCustomerKeys, doc.ID, doc); err != nil {
		return fmt.Errorf("customer key %s: %w", key, err)
	}
	return nil
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
