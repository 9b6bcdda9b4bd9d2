package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/fieldcrm/fieldcrm/models"
)

// Profile is what GET /v1/me returns: the user, their tenant and what they manage.
type Profile struct {
	User           models.User   `json:"user"`
	Tenant         models.Tenant `json:"tenant"`
	ManagedTeamIDs []string      `json:"managed_team_ids"`
}

// Me returns the signed-in user's profile.
func (s *Service) Me(ctx context.Context, a models.Actor) (Profile, error) {
	u, err := s.store.User(ctx, a.TenantID, a.UserID)
	if err != nil {
		return Profile{}, fmt.Errorf("me: %w", err)
	}
	t, err := s.store.Tenant(ctx, a.TenantID)
	if err != nil {
		return Profile{}, fmt.Errorf("me: tenant: %w", err)
	}
	managed := a.ManagedTeamIDs
	if managed == nil {
		managed = []string{}
	}
	return Profile{User: u, Tenant: t, ManagedTeamIDs: managed}, nil
}

// CreateUser adds a user to the actor's tenant, if the actor's role allows it.
func (s *Service) CreateUser(ctx context.Context, a models.Actor, in models.NewUser) (models.User, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return models.User{}, err
	}
	if err := a.CanCreateUser(in); err != nil {
		return models.User{}, err
	}
	v := &models.ValidationError{}
	if in.TeamID != "" {
		team, err := s.referencedTeam(ctx, a.TenantID, in.TeamID, v)
		if err != nil {
			return models.User{}, err
		}
		if in.ManagerID == "" {
			in.ManagerID = team.ManagerID // a rep reports to their team's manager by default
		}
		// Only admins choose managers (as in PatchUser): a manager's new rep
		// reports to the team's manager or to the manager creating them, never
		// to another team's manager, who would then see and steer a rep of a
		// team they do not manage.
		if a.Role == models.RoleManager && in.ManagerID != team.ManagerID && in.ManagerID != a.UserID {
			return models.User{}, &models.ForbiddenError{Reason: "managers give a new rep only themselves or the team's manager as manager_id; ask an admin to choose another"}
		}
	}
	if in.ManagerID != "" {
		if err := s.referencedManager(ctx, a.TenantID, "manager_id", in.ManagerID, v); err != nil {
			return models.User{}, err
		}
	}
	if err := v.Err(); err != nil {
		return models.User{}, err
	}
	hash, err := s.hash(ctx, in.Password)
	if err != nil {
		return models.User{}, err
	}
	now := s.now().UTC()
	u := models.User{
		ID: models.NewID(), TenantID: a.TenantID, Email: in.Email, Name: in.Name, Role: in.Role,
		TeamID: in.TeamID, ManagerID: in.ManagerID, TimeZone: in.TimeZone, Locale: in.Locale,
		Active: true, PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, models.ErrConflict) {
			return models.User{}, emailTaken()
		}
		return models.User{}, err
	}
	return u, nil
}

// referencedTeam loads a team named by the input, adding a field error when it
// does not exist in the tenant.
func (s *Service) referencedTeam(ctx context.Context, tenant, id string, v *models.ValidationError) (models.Team, error) {
	team, err := s.store.Team(ctx, tenant, id)
	if errors.Is(err, models.ErrNotFound) {
		v.Add("team_id", "no team with id %q", id)
		return team, nil
	}
	return team, err
}

// referencedManager adds a field error unless id is an active manager or admin of the tenant.
func (s *Service) referencedManager(ctx context.Context, tenant, field, id string, v *models.ValidationError) error {
	m, err := s.store.User(ctx, tenant, id)
	switch {
	case errors.Is(err, models.ErrNotFound):
		v.Add(field, "no user with id %q", id)
	case err != nil:
		return err
	case m.Role == models.RoleRep || !m.Active:
		v.Add(field, "must be an active manager or admin")
	}
	return nil
}

// UserListOptions filter and page GET /v1/users.
type UserListOptions struct {
	Role    models.Role
	Active  *bool
	Limit   int
	AfterID string
}

// Users lists the users the actor may see: everyone for an admin, a manager's
// teams and themselves, a rep only themselves.
func (s *Service) Users(ctx context.Context, a models.Actor, o UserListOptions) ([]models.User, error) {
	f := models.UserFilter{Role: o.Role, Active: o.Active, Limit: o.Limit, AfterID: o.AfterID}
	switch a.Role {
	case models.RoleAdmin:
	case models.RoleManager:
		f.TeamIDs = append([]string{}, a.ManagedTeamIDs...)
		f.OrUserID = a.UserID
	default:
		f.OnlyUserID = a.UserID
	}
	return s.store.Users(ctx, a.TenantID, f)
}

// User returns one user the actor may see, or models.ErrNotFound.
func (s *Service) User(ctx context.Context, a models.Actor, id string) (models.User, error) {
	u, err := s.store.User(ctx, a.TenantID, id)
	if err != nil {
		return models.User{}, err
	}
	if !a.CanSeeUser(u) {
		return models.User{}, models.ErrNotFound
	}
	return u, nil
}

// PatchUser changes a user the actor may see and edit. Deactivating a user also
// ends their sessions, so their refresh tokens stop working too.
func (s *Service) PatchUser(ctx context.Context, a models.Actor, id string, p models.UserPatch) (models.User, error) {
	p.Normalize()
	if err := p.Validate(); err != nil {
		return models.User{}, err
	}
	u, err := s.User(ctx, a, id)
	if err != nil {
		return models.User{}, err
	}
	if err := a.CanPatchUser(u, p); err != nil {
		return models.User{}, err
	}
	v := &models.ValidationError{}
	if p.TeamID != nil && *p.TeamID != "" {
		if _, err := s.referencedTeam(ctx, a.TenantID, *p.TeamID, v); err != nil {
			return models.User{}, err
		}
	}
	if p.ManagerID != nil && *p.ManagerID != "" {
		if *p.ManagerID == u.ID {
			v.Add("manager_id", "a user cannot be their own manager")
		} else if err := s.referencedManager(ctx, a.TenantID, "manager_id", *p.ManagerID, v); err != nil {
			return models.User{}, err
		}
	}
	role := u.Role
	if p.Role != nil {
		role = *p.Role
	}
	team := u.TeamID
	if p.TeamID != nil {
		team = *p.TeamID
	}
	if role == models.RoleRep && team == "" {
		v.Add("team_id", "is required for a rep")
	}
	if err := v.Err(); err != nil {
		return models.User{}, err
	}
	var passwordHash string
	if p.Password != nil {
		if u.ID == a.UserID {
			ok, err := s.verify(ctx, u.PasswordHash, *p.CurrentPassword)
			if err != nil {
				return models.User{}, err
			}
			if !ok {
				return models.User{}, &models.ValidationError{Fields: []models.FieldError{{Field: "current_password", Message: "is wrong"}}}
			}
		}
		hash, err := s.hash(ctx, *p.Password)
		if err != nil {
			return models.User{}, err
		}
		passwordHash = hash
	}
	fields := p.Apply(&u)
	if passwordHash != "" {
		u.PasswordHash = passwordHash
		fields["password_hash"] = passwordHash
	}
	u.UpdatedAt = s.now().UTC()
	fields["updated_at"] = u.UpdatedAt
	if err := s.store.UpdateUser(ctx, a.TenantID, u.ID, fields); err != nil {
		return models.User{}, err
	}
	if passwordHash != "" && (p.Active == nil || *p.Active) {
		if err := s.endOtherSessions(ctx, a, u); err != nil {
			return models.User{}, err
		}
	}
	if p.Active != nil && !*p.Active {
		if err := s.store.RevokeUserSessions(ctx, a.TenantID, u.ID, "", "deactivated", u.UpdatedAt); err != nil {
			return models.User{}, err
		}
		if s.devices != nil {
			if err := s.devices.ForgetUser(ctx, a.TenantID, u.ID); err != nil {
				return models.User{}, err
			}
		}
	}
	return u, nil
}

// endOtherSessions runs after u's password changed: every session of u
// ends (its refresh tokens, and its access tokens, which are checked against
// their session on every request) but the one that made the change, when u
// changed their own password; an admin's reset ends them all. The devices of
// the ended sessions stop getting u's pushes: a password is changed because
// a phone was lost or a password leaked, and the app registers its device
// again when it signs in.
func (s *Service) endOtherSessions(ctx context.Context, a models.Actor, u models.User) error {
	var keep models.Session
	if a.UserID == u.ID && a.SessionID != "" {
		// The actor of a REST call carries no device (see api.actorOf); its
		// session knows which one it is.
		sess, err := s.store.Session(ctx, a.SessionID)
		if err != nil {
			return fmt.Errorf("password change: load the session: %w", err)
		}
		keep = sess
	}
	if err := s.store.RevokeUserSessions(ctx, u.TenantID, u.ID, keep.ID, "password changed", u.UpdatedAt); err != nil {
		return err
	}
	if s.devices == nil {
		return nil
	}
	if keep.ID == "" {
		return s.devices.ForgetUser(ctx, u.TenantID, u.ID)
	}
	return s.devices.ForgetUserExcept(ctx, keep)
}

// CreateTeam adds a team; only admins may.
func (s *Service) CreateTeam(ctx context.Context, a models.Actor, in models.NewTeam) (models.Team, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return models.Team{}, err
	}
	if err := a.CanCreateTeam(); err != nil {
		return models.Team{}, err
	}
	if in.ManagerID != "" {
		v := &models.ValidationError{}
		if err := s.referencedManager(ctx, a.TenantID, "manager_id", in.ManagerID, v); err != nil {
			return models.Team{}, err
		}
		if err := v.Err(); err != nil {
			return models.Team{}, err
		}
	}
	now := s.now().UTC()
	t := models.Team{ID: models.NewID(), TenantID: a.TenantID, Name: in.Name, ManagerID: in.ManagerID, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateTeam(ctx, t); err != nil {
		return models.Team{}, err
	}
	return t, nil
}

// Teams lists the teams the actor may see.
func (s *Service) Teams(ctx context.Context, a models.Actor) ([]models.Team, error) {
	all, err := s.store.Teams(ctx, a.TenantID, "")
	if err != nil {
		return nil, err
	}
	visible := make([]models.Team, 0, len(all))
	for _, t := range all {
		if a.CanSeeTeam(t) {
			visible = append(visible, t)
		}
	}
	return visible, nil
}

// Team returns one team the actor may see, or models.ErrNotFound.
func (s *Service) Team(ctx context.Context, a models.Actor, id string) (models.Team, error) {
	t, err := s.store.Team(ctx, a.TenantID, id)
	if err != nil {
		return models.Team{}, err
	}
	if !a.CanSeeTeam(t) {
		return models.Team{}, models.ErrNotFound
	}
	return t, nil
}
