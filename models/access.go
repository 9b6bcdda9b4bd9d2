package models

import "slices"

// Actor is the signed-in user a request acts for, with what their permissions
// depend on. It is built from the stored user on every request, never from token
// claims alone, so a role change or a deactivation applies at once.
type Actor struct {
	UserID   string
	TenantID string
	Role     Role
	// TeamID is the team the actor belongs to (reps, and managers who are in a team).
	TeamID string
	// ManagedTeamIDs are the teams whose manager is the actor.
	ManagedTeamIDs []string
	// DeviceID is the device of the actor's session (from login); sync tells
	// a device's own earlier writes from other people's by it.
	DeviceID string
	// SessionID is the session of the request (empty for the server's own
	// actors); a password change keeps it and ends the user's others.
	SessionID string
}

// manages reports whether the actor manages teamID.
func (a Actor) manages(teamID string) bool {
	return teamID != "" && slices.Contains(a.ManagedTeamIDs, teamID)
}

// CanSeeUser reports whether the actor may read target. Callers answer
// ErrNotFound when it may not, so a hidden user is indistinguishable from a missing one.
func (a Actor) CanSeeUser(target User) bool {
	if target.TenantID != a.TenantID {
		return false
	}
	switch a.Role {
	case RoleAdmin:
		return true
	case RoleManager:
		return target.ID == a.UserID || a.manages(target.TeamID)
	default:
		return target.ID == a.UserID
	}
}

// CanCreateUser reports whether the actor may create a user like n: admins create
// anyone, managers create reps in a team they manage, reps create nobody.
func (a Actor) CanCreateUser(n NewUser) error {
	switch a.Role {
	case RoleAdmin:
		return nil
	case RoleManager:
		if n.Role != RoleRep {
			return forbidden("only admins create admins and managers")
		}
		if !a.manages(n.TeamID) {
			return forbidden("managers create reps only in teams they manage")
		}
		return nil
	default:
		return forbidden("reps cannot create users")
	}
}

// CanPatchUser reports whether the actor may apply p to target, which the actor
// can already see. Everyone edits their own profile; admins edit anyone but cannot
// demote or deactivate themselves (a tenant must never lose its last way in);
// managers edit the profile, activity and team of reps in teams they manage.
func (a Actor) CanPatchUser(target User, p UserPatch) error {
	self := target.ID == a.UserID
	adminFields := p.Role != nil || p.Active != nil || p.TeamID != nil || p.ManagerID != nil
	switch {
	case self && p.Password != nil && (p.CurrentPassword == nil || *p.CurrentPassword == ""):
		return &ValidationError{Fields: []FieldError{{Field: "current_password", Message: "is required to change your own password"}}}
	case self && a.Role == RoleAdmin && (p.Role != nil || (p.Active != nil && !*p.Active)):
		return forbidden("admins cannot change their own role or deactivate themselves")
	case self && a.Role == RoleAdmin:
		return nil
	case self && adminFields:
		return forbidden("you cannot change your own role, team, manager or activity")
	case self:
		return nil
	case a.Role == RoleAdmin:
		return nil
	case a.Role == RoleManager && target.Role == RoleRep && a.manages(target.TeamID):
		if p.Role != nil || p.ManagerID != nil {
			return forbidden("only admins change roles and managers")
		}
		if p.TeamID != nil && !a.manages(*p.TeamID) {
			return forbidden("managers move reps only between teams they manage")
		}
		return nil
	default:
		return forbidden("you may not change this user")
	}
}

// CanCreateTeam reports whether the actor may create teams: admins only.
func (a Actor) CanCreateTeam() error {
	if a.Role != RoleAdmin {
		return forbidden("only admins create teams")
	}
	return nil
}

// CanSeeTeam reports whether the actor may read team.
func (a Actor) CanSeeTeam(team Team) bool {
	if team.TenantID != a.TenantID {
		return false
	}
	switch a.Role {
	case RoleAdmin:
		return true
	default:
		return team.ID == a.TeamID || a.manages(team.ID)
	}
}

// ForbiddenError explains why an action was refused; it matches ErrForbidden.
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string        { return "forbidden: " + e.Reason }
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

func forbidden(reason string) error { return &ForbiddenError{Reason: reason} }
