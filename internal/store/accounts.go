package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/models"
)

// CreateTenant stores a new tenant.
func (s *Store) CreateTenant(ctx context.Context, t models.Tenant) error {
	return s.insert(ctx, collTenants, t)
}

// DeleteTenant removes a tenant document. Signup uses it to undo a tenant whose
// first admin could not be created (there are no transactions to roll back).
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	if _, err := s.coll(collTenants).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("delete tenant %s: %w", id, err)
	}
	return nil
}

// Tenant returns the tenant with id, or models.ErrNotFound.
func (s *Store) Tenant(ctx context.Context, id string) (models.Tenant, error) {
	var t models.Tenant
	return t, s.findByID(ctx, collTenants, id, &t)
}

// CreateUser stores a new user. It returns models.ErrConflict when the e-mail is
// already taken, in any tenant: the unique index decides, so two concurrent
// sign-ups with one address cannot both win.
func (s *Store) CreateUser(ctx context.Context, u models.User) error {
	if err := s.insert(ctx, collUsers, u); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// User returns the user id of tenant, or models.ErrNotFound when it does not exist
// or belongs to another tenant.
func (s *Store) User(ctx context.Context, tenant, id string) (models.User, error) {
	var u models.User
	if err := s.findByID(ctx, collUsers, id, &u); err != nil {
		return u, err
	}
	if u.TenantID != tenant {
		return models.User{}, models.ErrNotFound
	}
	return u, nil
}

// UserByEmail finds a user by normalized e-mail across tenants, for sign-in.
func (s *Store) UserByEmail(ctx context.Context, email string) (models.User, error) {
	var u models.User
	err := s.coll(collUsers).FindOne(ctx, bson.D{{Key: "email", Value: email}}).Decode(&u)
	if err != nil {
		return u, notFoundOr(err, "find user by e-mail")
	}
	return u, nil
}

// Users lists users of tenant in id order, following f.
func (s *Store) Users(ctx context.Context, tenant string, f models.UserFilter) ([]models.User, error) {
	filter := bson.D{{Key: "tenant_id", Value: tenant}}
	// Both the "only" and the paging condition are on _id: they must share one
	// key, since a filter with _id twice means only one of them to MongoDB.
	idCond := bson.D{}
	if f.AfterID != "" {
		idCond = append(idCond, bson.E{Key: "$gt", Value: f.AfterID})
	}
	switch {
	case f.OnlyUserID != "":
		idCond = append(idCond, bson.E{Key: "$eq", Value: f.OnlyUserID})
	case f.TeamIDs != nil:
		or := bson.A{bson.D{{Key: "team_id", Value: bson.D{{Key: "$in", Value: f.TeamIDs}}}}}
		if f.OrUserID != "" {
			or = append(or, bson.D{{Key: "_id", Value: f.OrUserID}})
		}
		filter = append(filter, bson.E{Key: "$or", Value: or})
	}
	if f.Role != "" {
		filter = append(filter, bson.E{Key: "role", Value: f.Role})
	}
	if f.Active != nil {
		filter = append(filter, bson.E{Key: "active", Value: *f.Active})
	}
	if len(idCond) > 0 {
		filter = append(filter, bson.E{Key: "_id", Value: idCond})
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
	if f.Limit > 0 {
		opts.SetLimit(int64(f.Limit))
	}
	var users []models.User
	if err := s.findAll(ctx, collUsers, filter, opts, &users); err != nil {
		return nil, fmt.Errorf("list users of tenant %s: %w", tenant, err)
	}
	return users, nil
}

// UpdateUser writes the given fields of user id in tenant. Only the named fields
// are set, so two concurrent edits of different fields both survive.
func (s *Store) UpdateUser(ctx context.Context, tenant, id string, fields map[string]any) error {
	set := bson.D{}
	for k, v := range fields {
		set = append(set, bson.E{Key: k, Value: v})
	}
	res, err := s.coll(collUsers).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "tenant_id", Value: tenant}},
		bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return fmt.Errorf("update user %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return models.ErrNotFound
	}
	return nil
}

// CreateTeam stores a new team.
func (s *Store) CreateTeam(ctx context.Context, t models.Team) error {
	return s.insert(ctx, collTeams, t)
}

// Team returns team id of tenant, or models.ErrNotFound.
func (s *Store) Team(ctx context.Context, tenant, id string) (models.Team, error) {
	var t models.Team
	if err := s.findByID(ctx, collTeams, id, &t); err != nil {
		return t, err
	}
	if t.TenantID != tenant {
		return models.Team{}, models.ErrNotFound
	}
	return t, nil
}

// Teams lists the teams of tenant by name. managerID, when set, keeps only the
// teams that user manages.
func (s *Store) Teams(ctx context.Context, tenant, managerID string) ([]models.Team, error) {
	filter := bson.D{{Key: "tenant_id", Value: tenant}}
	if managerID != "" {
		filter = append(filter, bson.E{Key: "manager_id", Value: managerID})
	}
	var teams []models.Team
	opts := options.Find().SetSort(bson.D{{Key: "name", Value: 1}, {Key: "_id", Value: 1}})
	if err := s.findAll(ctx, collTeams, filter, opts, &teams); err != nil {
		return nil, fmt.Errorf("list teams of tenant %s: %w", tenant, err)
	}
	return teams, nil
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, sess models.Session) error {
	return s.insert(ctx, collSessions, sess)
}

// Session returns the session id, or models.ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (models.Session, error) {
	var sess models.Session
	return sess, s.findByID(ctx, collSessions, id, &sess)
}

// RevokeSession marks session id revoked. Revoking twice keeps the first reason.
func (s *Store) RevokeSession(ctx context.Context, id, reason string, at time.Time) error {
	_, err := s.coll(collSessions).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: at}, {Key: "revoke_reason", Value: reason}}}})
	if err != nil {
		return fmt.Errorf("revoke session %s: %w", id, err)
	}
	return nil
}

// RevokeUserSessions revokes every live session of a user (deactivation).
func (s *Store) RevokeUserSessions(ctx context.Context, tenant, userID, except, reason string, at time.Time) error {
	filter := bson.D{{Key: "tenant_id", Value: tenant}, {Key: "user_id", Value: userID}, {Key: "revoked_at", Value: nil}}
	if except != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: except}}})
	}
	_, err := s.coll(collSessions).UpdateMany(ctx, filter,
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: at}, {Key: "revoke_reason", Value: reason}}}})
	if err != nil {
		return fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	return nil
}

// CreateRefreshToken stores a refresh token's hash.
func (s *Store) CreateRefreshToken(ctx context.Context, t models.RefreshToken) error {
	return s.insert(ctx, collRefreshTokens, t)
}

// RefreshToken returns the stored token with this hash, or models.ErrNotFound.
func (s *Store) RefreshToken(ctx context.Context, hash string) (models.RefreshToken, error) {
	var t models.RefreshToken
	return t, s.findByID(ctx, collRefreshTokens, hash, &t)
}

// ClaimRotation records that the refresh token with this hash has been used. It
// returns models.ErrConflict when it was used before: the insert under the unique
// _id is the atomic decision, on MongoDB and on FerretDB alike, so of two
// concurrent refreshes with one token exactly one wins.
func (s *Store) ClaimRotation(ctx context.Context, hash string, at time.Time) error {
	err := s.insert(ctx, collRotations, bson.D{{Key: "_id", Value: hash}, {Key: "at", Value: at}})
	if err != nil {
		return fmt.Errorf("claim rotation: %w", err)
	}
	return nil
}

// findAll runs a find and decodes every result into out (a pointer to a slice).
func (s *Store) findAll(ctx context.Context, coll string, filter any, opts *options.FindOptions, out any) error {
	cur, err := s.coll(coll).Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	return cur.All(ctx, out)
}

// notFoundOr maps "no documents" to models.ErrNotFound and wraps anything else.
func notFoundOr(err error, what string) error {
	if errors.Is(err, mongo.ErrNoDocuments) {
		return models.ErrNotFound
	}
	return fmt.Errorf("%s: %w", what, err)
}
