package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/fieldcrm/fieldcrm/models"
)

// collSyncRounds holds, per device of a user (_id: tenant/user/device), the
// rounds of its latest pulls (models.SyncRound).
const collSyncRounds = "sync_rounds"

type syncRoundsDoc struct {
	ID       string             `bson:"_id"`
	TenantID string             `bson:"tenant_id"`
	Rounds   []models.SyncRound `bson:"rounds"`
}

// Tenant and user ids are the server's own and hold no slash, so the device
// id, last, may hold anything.
func syncRoundsID(tenant, user, device string) string { return tenant + "/" + user + "/" + device }

// SyncRounds returns the rounds kept of a device's latest pulls, oldest
// first (none for a device that never pulled).
func (s *Store) SyncRounds(ctx context.Context, tenant, user, device string) ([]models.SyncRound, error) {
	var doc syncRoundsDoc
	err := s.findByID(ctx, collSyncRounds, syncRoundsID(tenant, user, device), &doc)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sync rounds of device %s: %w", device, err)
	}
	return doc.Rounds, nil
}

// PutSyncRounds replaces the rounds kept of a device's latest pulls.
func (s *Store) PutSyncRounds(ctx context.Context, tenant, user, device string, rounds []models.SyncRound) error {
	id := syncRoundsID(tenant, user, device)
	return s.put(ctx, collSyncRounds, id, syncRoundsDoc{ID: id, TenantID: tenant, Rounds: rounds})
}
