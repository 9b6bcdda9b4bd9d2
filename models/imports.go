package models

import "time"

// Import states.
const (
	ImportRunning     = "running"
	ImportDone        = "done"
	ImportFailed      = "failed"
	ImportInterrupted = "interrupted"
)

// Import is one spreadsheet import and its progress; the counts are final
// once State is done.
type Import struct {
	ID       string `bson:"_id" json:"id"`
	TenantID string `bson:"tenant_id" json:"-"`
	UserID   string `bson:"user_id" json:"user_id"`
	Kind     string `bson:"kind" json:"kind"`
	FileName string `bson:"file_name" json:"file_name"`
	Format   string `bson:"format" json:"format"`
	Encoding string `bson:"encoding" json:"encoding"`
	// OnDuplicate is skip, merge or flag; DryRun writes nothing.
	OnDuplicate string `bson:"on_duplicate" json:"on_duplicate"`
	DryRun      bool   `bson:"dry_run" json:"dry_run"`
	State       string `bson:"state" json:"state"`
	Error       string `bson:"error,omitempty" json:"error,omitempty"`
	// Unmapped are the file's columns that no field took (left out).
	Unmapped []string `bson:"unmapped" json:"unmapped"`
	Total    int      `bson:"total" json:"total"`
	Done     int      `bson:"done" json:"done"`
	Created  int      `bson:"created" json:"created"`
	Merged   int      `bson:"merged" json:"merged"`
	Skipped  int      `bson:"skipped" json:"skipped"`
	Failed   int      `bson:"failed" json:"failed"`
	// RowsPerSecond and ETASeconds are estimates while running.
	RowsPerSecond float64    `bson:"rows_per_second" json:"rows_per_second"`
	ETASeconds    float64    `bson:"eta_seconds" json:"eta_seconds"`
	StartedAt     time.Time  `bson:"started_at" json:"started_at"`
	UpdatedAt     time.Time  `bson:"updated_at" json:"updated_at"`
	FinishedAt    *time.Time `bson:"finished_at" json:"finished_at"`
	// Runner names the process running the import (crm.Service's instance),
	// so that the process's own imports can be told from another replica's.
	Runner string `bson:"runner" json:"-"`
}

// ImportFailure is one cell or row an import could not take.
type ImportFailure struct {
	// ID orders the failures: import/line/n.
	ID       string `bson:"_id" json:"-"`
	ImportID string `bson:"import_id" json:"-"`
	Line     int    `bson:"line" json:"line"`
	Column   string `bson:"column" json:"column"`
	Value    string `bson:"value" json:"value"`
	Reason   string `bson:"reason" json:"reason"`
}

// SkippedRow is a row an import did not create because it matched a
// customer already there: skipped, or merged into that customer (or, in a
// dry run, an earlier row of the same file; MatchedID is then empty). A row
// of contacts, interactions, orders or payments is skipped only when it was
// imported before; MatchedID is then that record's. It is listed as a failed
// row is, so that no row leaves an import unaccounted for.
type SkippedRow struct {
	Line int `bson:"line" json:"line"`
	// Action is skipped or merged.
	Action string `bson:"action" json:"action"`
	// Reason says what the row matched and by which key ("matches
	// C2026-000001-7 王伟 (phone +8613800138000)"), or "imported before".
	Reason        string `bson:"reason" json:"reason"`
	MatchedID     string `bson:"matched_id" json:"matched_id"`
	MatchedNumber string `bson:"matched_number" json:"matched_number"`
}
