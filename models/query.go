package models

// Query selects records of one tenant: what a list, a lookup or a count
// asks of storage. Storage turns it into its own filter; nothing outside it
// builds one.
type Query struct {
	Tenant string
	Scope  Scope
	// OrAssignee also keeps records whose assignee_id is this user (tasks, tickets).
	OrAssignee  string
	Conds       []Cond
	WithDeleted bool
	// SortField is the stored field to order by, then _id; Desc reverses both.
	SortField string
	Desc      bool
	// After continues after the record with this sort value and id.
	After *ListPosition
	Limit int
	// Shown says the records are read to be shown or exported, never
	// written back: the store may leave out their per-field sync stamps
	// (Meta.FieldSeqs and FieldDevices, an entry per field each).
	Shown bool
}

// Cond is one condition of a Query on a stored field (its bson name, dotted
// for nested fields).
type Cond struct {
	Field string
	Op    Op
	Value any
}

// Op is a comparison of Cond.
type Op string

// Comparisons.
const (
	OpEq       Op = "$eq"
	OpNe       Op = "$ne"
	OpIn       Op = "$in"
	OpGt       Op = "$gt"
	OpGte      Op = "$gte"
	OpLt       Op = "$lt"
	OpLte      Op = "$lte"
	OpContains Op = "contains" // case-insensitive substring of a string field
	OpMissing  Op = "missing"  // field is null or absent (Value ignored)
)

// ListPosition is where a listing stopped: the sort value and id of its last
// record, from which the next page continues.
type ListPosition struct {
	Value any
	ID    string
}

// UserFilter narrows a list of users. Zero values mean "no restriction".
type UserFilter struct {
	// TeamIDs keeps users in one of these teams; OrUserID also keeps that user.
	TeamIDs  []string
	OrUserID string
	// OnlyUserID keeps just that user (a rep's view of the list).
	OnlyUserID string
	Role       Role
	Active     *bool
	Limit      int
	// AfterID continues a listing after the last id of the previous page.
	AfterID string
}

// Tally counts the records a Query selects, grouped by the values of some
// fields, and sums numeric fields per group: what a report asks of storage,
// so that it reads index entries rather than every record. The Query's sort,
// position and limit do not apply.
type Tally struct {
	Query
	// By are the stored fields the records are grouped by.
	By []string
	// Days are the time fields among By grouped by their day (UTC): a
	// group's value is that day's midnight.
	Days []string
	// Sum are integer fields added up per group.
	Sum []string
}

// TallyGroup is one group of a Tally: the values of its By fields, in
// order (a string, an int64 or float64, a time.Time, or nil for a missing
// field), how many records hold them, and the sums of the Sum fields.
type TallyGroup struct {
	Values []any
	Count  int64
	Sums   []int64
}
