package models

import (
	"context"
	"time"
)

// Revision is one versioned change of a record in progress, passed between
// storage, which reads the record and writes its next version, and the
// caller's edit, which changes the record and says how to record the
// change. Storage retries the edit on a fresh read when another writer
// commits a version first, so an edit may run several times and must
// derive everything from the record it is given.
type Revision struct {
	// Found says the record was stored. Without it the edit starts a new
	// record from the zero value, written as version 1.
	Found bool
	// At and By are when and by whom the change is made: the version's
	// updated_at and updated_by, and a new record's created_at and
	// created_by. The edit must set At.
	At time.Time
	By string
	// Action and Changes make the version's audit entry.
	Action  string
	Changes []FieldChange
	// Skip writes nothing: the edit found nothing to change.
	Skip bool
	// Around, when set, runs the write and must call it at most once: the
	// CRM stamps each change with a sync number that stays in flight until
	// the write returns.
	Around func(ctx context.Context, write func(ctx context.Context) error) error
}
