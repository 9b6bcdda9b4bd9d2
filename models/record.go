package models

import "time"

// Meta is the envelope every CRM record carries: tenant, ownership, version and
// timestamps. Clients never write these fields directly; the server sets them.
type Meta struct {
	ID       string `bson:"_id" json:"id"`
	TenantID string `bson:"tenant_id" json:"-"`
	// OwnerID is the rep responsible for the record; for records hanging off a
	// customer it is the customer's owner, copied so that lists filter on it.
	// Empty means the record is in the public pool (customers only).
	OwnerID string `bson:"owner_id" json:"owner_id"`
	// TeamID is the owner's team, copied for managers' visibility filters.
	TeamID string `bson:"team_id" json:"team_id"`
	// Version starts at 1 and grows by one with every change; If-Match compares it.
	Version   int64      `bson:"version" json:"version"`
	CreatedAt time.Time  `bson:"created_at" json:"created_at"`
	CreatedBy string     `bson:"created_by" json:"created_by"`
	UpdatedAt time.Time  `bson:"updated_at" json:"updated_at"`
	UpdatedBy string     `bson:"updated_by" json:"updated_by"`
	DeletedAt *time.Time `bson:"deleted_at" json:"deleted_at,omitempty"`
	// Seq is the tenant's sync number of the record's last change, and FieldSeqs
	// the number of the last change of each field (by JSON name); sync pulls
	// what changed after a device's cursor and merges pushed fields with them.
	Seq       int64            `bson:"seq" json:"-"`
	FieldSeqs map[string]int64 `bson:"field_seqs" json:"-"`
	// FieldDevices names, per field, the device whose write last changed it
	// ("" for the server and the REST API): a device's own earlier edit of a
	// field is not a conflict with its next one.
	FieldDevices map[string]string `bson:"field_devices" json:"-"`
	// Former are the record's earlier owners, newest last, so that a device of
	// someone who lost access learns to delete it.
	Former []Ownership `bson:"former" json:"-"`
}

// Ownership is who owned a record, with their team.
type Ownership struct {
	OwnerID string `bson:"owner_id"`
	TeamID  string `bson:"team_id"`
}

// maxFormer bounds the ownership history kept on a record.
const maxFormer = 20

// Reown gives the record to ownerID in teamID, remembering the previous owner.
func (m *Meta) Reown(ownerID, teamID string) {
	if m.OwnerID == ownerID && m.TeamID == teamID {
		return
	}
	m.Former = append(m.Former, Ownership{OwnerID: m.OwnerID, TeamID: m.TeamID})
	if len(m.Former) > maxFormer {
		m.Former = m.Former[len(m.Former)-maxFormer:]
	}
	m.OwnerID, m.TeamID = ownerID, teamID
}

// SyncsTo reports whether the record belongs on the actor's devices: it is
// visible to them and owned (the public pool is browsed online, not synced).
func (a Actor) SyncsTo(m *Meta) bool {
	return m.OwnerID != "" && a.CanSeeOwned(m.TenantID, m.OwnerID, m.TeamID)
}

// SyncedTo reports whether an earlier owner made the record sync to the actor.
func (a Actor) SyncedTo(m *Meta) bool {
	for _, f := range m.Former {
		if f.OwnerID != "" && a.CanSeeOwned(m.TenantID, f.OwnerID, f.TeamID) {
			return true
		}
	}
	return false
}

// Header returns the envelope itself; every record type gets it by embedding Meta.
func (m *Meta) Header() *Meta { return m }

// Record is what every CRM record type (through its embedded Meta) satisfies;
// generic code reaches the envelope of any record through it.
type Record interface{ Header() *Meta }

// MetaOf returns the envelope of a record, given a pointer to it.
func MetaOf(rec any) *Meta { return rec.(Record).Header() }

// Deleted reports whether the record is a tombstone.
func (m *Meta) Deleted() bool { return m.DeletedAt != nil }

// CanSeeOwned reports whether the actor may read a record owned by ownerID in
// teamID: admins see the tenant, managers their teams and their own, reps their
// own. Records in the public pool (no owner) are visible to everyone in the
// tenant, so reps can find and claim them.
func (a Actor) CanSeeOwned(tenantID, ownerID, teamID string) bool {
	if tenantID != a.TenantID {
		return false
	}
	switch {
	case a.Role == RoleAdmin, ownerID == "", ownerID == a.UserID:
		return true
	case a.Role == RoleManager:
		return a.manages(teamID)
	default:
		return false
	}
}

// CanEditOwned reports whether the actor may change a record it can see. Pool
// records are read-only until claimed, except for admins and managers.
func (a Actor) CanEditOwned(tenantID, ownerID, teamID string) error {
	if !a.CanSeeOwned(tenantID, ownerID, teamID) {
		return ErrNotFound
	}
	if ownerID == "" && a.Role == RoleRep {
		return forbidden("claim this customer from the public pool before editing it")
	}
	return nil
}

// Scope describes which owners' records an actor may list; the store turns it
// into a filter. A zero Scope (admin) means the whole tenant.
type Scope struct {
	// All is true for admins.
	All bool
	// OwnerIDs and TeamIDs: a record is visible when its owner is in OwnerIDs or
	// its team is in TeamIDs.
	OwnerIDs []string
	TeamIDs  []string
	// Pool adds the unowned records of the public pool.
	Pool bool
}

// ListScope returns what the actor may list of owned records.
func (a Actor) ListScope(withPool bool) Scope {
	switch a.Role {
	case RoleAdmin:
		return Scope{All: true}
	case RoleManager:
		return Scope{OwnerIDs: []string{a.UserID}, TeamIDs: append([]string{}, a.ManagedTeamIDs...), Pool: withPool}
	default:
		return Scope{OwnerIDs: []string{a.UserID}, Pool: withPool}
	}
}
