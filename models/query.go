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
