package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/models"
)

// Collections of reminders and push (package notify).
const (
	// Notifications is the in-app inbox, a synced table.
	Notifications = "notifications"
	// DeviceSets holds each user's devices (models.DeviceSet), versioned.
	DeviceSets = "device_sets"

	collDeviceTokens = "device_tokens"
	collReminders    = "reminders"
	collDeliveries   = "deliveries"
)

// tokenOwnerID is the _id of a token's owner in a tenant.
func tokenOwnerID(tenant, token string) string { return tenant + "/" + token }

// TokenOwnerOf returns who holds token in tenant, or models.ErrNotFound.
func (s *Store) TokenOwnerOf(ctx context.Context, tenant, token string) (models.TokenOwner, error) {
	var o models.TokenOwner
	err := s.findByID(ctx, collDeviceTokens, tokenOwnerID(tenant, token), &o)
	return o, err
}

// SetTokenOwner records that o.Token now belongs to o's device in o's tenant.
func (s *Store) SetTokenOwner(ctx context.Context, o models.TokenOwner) error {
	id := tokenOwnerID(o.TenantID, o.Token)
	return s.put(ctx, collDeviceTokens, id, struct {
		ID                string `bson:"_id"`
		models.TokenOwner `bson:",inline"`
	}{id, o})
}

// DeleteTokenOwner forgets token in owner's tenant, but only while it still
// belongs to owner's device: a token that moved on keeps its new owner.
func (s *Store) DeleteTokenOwner(ctx context.Context, owner models.TokenOwner) error {
	current, err := s.TokenOwnerOf(ctx, owner.TenantID, owner.Token)
	if errors.Is(err, models.ErrNotFound) || (err == nil && current != owner) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.deleteByID(ctx, collDeviceTokens, tokenOwnerID(owner.TenantID, owner.Token))
}

// Reminder returns the reminder with id, or models.ErrNotFound.
func (s *Store) Reminder(ctx context.Context, id string) (models.Reminder, error) {
	var r models.Reminder
	err := s.findByID(ctx, collReminders, id, &r)
	return r, err
}

// PutReminder stores r, replacing what was stored under its id. Reminders are
// written by the scheduler and the worker that holds the reminder's claim,
// so a plain replace is enough.
func (s *Store) PutReminder(ctx context.Context, r models.Reminder) error {
	return s.put(ctx, collReminders, r.ID, r)
}

// ClaimDelivery inserts d; models.ErrConflict means another worker (or an
// earlier attempt) claimed the same push first.
func (s *Store) ClaimDelivery(ctx context.Context, d models.Delivery) error {
	return s.insert(ctx, collDeliveries, d)
}

// DeliveryOf returns the delivery with id, or models.ErrNotFound.
func (s *Store) DeliveryOf(ctx context.Context, id string) (models.Delivery, error) {
	var d models.Delivery
	err := s.findByID(ctx, collDeliveries, id, &d)
	return d, err
}

// PutDelivery replaces the stored delivery with d.
func (s *Store) PutDelivery(ctx context.Context, d models.Delivery) error {
	return s.put(ctx, collDeliveries, d.ID, d)
}

// put writes doc under id, inserting or replacing.
func (s *Store) put(ctx context.Context, coll, id string, doc any) error {
	for range 3 {
		err := s.writeDirect(ctx, direct{coll: coll, doc: doc, replace: true})
		if errors.Is(err, models.ErrConflict) { // not there yet
			err = s.writeDirect(ctx, direct{coll: coll, doc: doc})
			if errors.Is(err, models.ErrConflict) {
				continue // inserted meanwhile by someone else: replace it
			}
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			if err != nil {
				return fmt.Errorf("put %s %s: %w", coll, id, err)
			}
			return nil
		}
		_, err = s.coll(coll).ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true))
		if err != nil {
			return fmt.Errorf("put %s %s: %w", coll, id, err)
		}
		return nil
	}
	return fmt.Errorf("put %s %s: %w", coll, id, models.ErrConflict)
}

// createNotifyCollections is migration 5: the collections of reminders and push.
func createNotifyCollections(ctx context.Context, s *Store) error {
	owned := []index{{"tenant_owner", asc("tenant_id", "owner_id"), false}}
	for _, step := range []struct {
		coll    string
		indexes []index
	}{
		{Notifications, append(owned, index{"tenant_seq", asc("tenant_id", "seq"), false})},
		{DeviceSets, nil},
		{collDeviceTokens, nil},
		{collReminders, []index{{"tenant_task", asc("tenant_id", "task_id"), false}}},
		{collDeliveries, nil},
	} {
		if err := s.ensureIndexes(ctx, step.coll, step.indexes...); err != nil {
			return err
		}
	}
	return nil
}

// InsertReminders stores new reminders in one round trip: for bulk loads
// (benchmarks, imports). It stops at the first failure.
func (s *Store) InsertReminders(ctx context.Context, rs []models.Reminder) error {
	docs := make([]any, len(rs))
	for i := range rs {
		docs[i] = rs[i]
	}
	return s.insertMany(ctx, collReminders, docs)
}

// RecordFiring stores what became of one firing of a reminder: its new state
// and the outcome of each delivery, in one transaction where the store writes
// directly (one sync to disk instead of one per document).
func (s *Store) RecordFiring(ctx context.Context, r models.Reminder, deliveries []models.Delivery) error {
	writes := []direct{{coll: collReminders, doc: r, replace: true}}
	for _, d := range deliveries {
		writes = append(writes, direct{coll: collDeliveries, doc: d, replace: true})
	}
	err := s.writeDirect(ctx, writes...)
	if !errors.Is(err, errors.ErrUnsupported) {
		if err != nil {
			return fmt.Errorf("record firing of %s: %w", r.ID, err)
		}
		return nil
	}
	for _, d := range deliveries {
		if err := s.PutDelivery(ctx, d); err != nil {
			return err
		}
	}
	return s.PutReminder(ctx, r)
}
