package models

import "time"

// AuditEntry records one write to a record: who, when, what changed. Its ID
// is collection/record/version, so storing it is also the claim on that
// version: of two writers that read the same version, only one can store the
// entry for the next. The audit log is thus also each record's version
// history.
type AuditEntry struct {
	ID         string        `bson:"_id" json:"id"`
	TenantID   string        `bson:"tenant_id" json:"-"`
	Collection string        `bson:"collection" json:"collection"`
	RecordID   string        `bson:"record_id" json:"record_id"`
	Version    int64         `bson:"version" json:"version"`
	Action     string        `bson:"action" json:"action"`
	ActorID    string        `bson:"actor_id" json:"actor_id"`
	At         time.Time     `bson:"at" json:"at"`
	Changes    []FieldChange `bson:"changes" json:"changes"`
}

// FieldChange is one field of a record that an audited write changed.
type FieldChange struct {
	Field string `bson:"field" json:"field"`
	Old   any    `bson:"old" json:"old"`
	New   any    `bson:"new" json:"new"`
}
