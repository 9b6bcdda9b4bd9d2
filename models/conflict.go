package models

import "time"

// Conflict policies.
const (
	// PolicyLastWriter keeps the value received last (the device's push).
	PolicyLastWriter = "last_writer_wins"
	// PolicyUnion keeps both edits of a list (tags).
	PolicyUnion = "union"
	// PolicyDeleteWins keeps a delete over a concurrent edit.
	PolicyDeleteWins = "delete_wins"
)

// Conflict records a column that a device and someone else changed since the
// device last synced, with both values, so the losing one is never lost
// silently. The record's owner and their managers see it and may revert it.
type Conflict struct {
	Meta     `bson:",inline"`
	Table    string `bson:"table" json:"table"`
	RecordID string `bson:"record_id" json:"record_id"`
	// Column is the conflicting column, or "*" for an edit that met a delete.
	Column string `bson:"column" json:"column"`
	// ServerValue and DeviceValue are JSON: what the server held, what the
	// device pushed.
	ServerValue string    `bson:"server_value" json:"server_value"`
	ServerBy    string    `bson:"server_by" json:"server_by"`
	ServerAt    time.Time `bson:"server_at" json:"server_at"`
	DeviceValue string    `bson:"device_value" json:"device_value"`
	DeviceBy    string    `bson:"device_by" json:"device_by"`
	DeviceID    string    `bson:"device_id" json:"device_id"`
	Policy      string    `bson:"policy" json:"policy"`
	// Kept says which value the policy kept: device, server or union.
	Kept string `bson:"kept" json:"kept"`
	// Resolution is set when someone resolved the conflict: "keep" (the kept
	// value stays) or "revert" (the other value was restored).
	Resolution string     `bson:"resolution" json:"resolution"`
	ResolvedBy string     `bson:"resolved_by" json:"resolved_by"`
	ResolvedAt *time.Time `bson:"resolved_at" json:"resolved_at"`

	// Sealed says ServerValue and DeviceValue hold ciphertexts of their JSON:
	// the column is a sensitive one (a national ID number). Not synced.
	Sealed bool `bson:"sealed,omitempty" json:"-"`

	// Of is the record the conflict is about, for its owner and team (the
	// conflict is visible to whoever sees the record); not stored.
	Of *Meta `bson:"-" json:"-"`
}
