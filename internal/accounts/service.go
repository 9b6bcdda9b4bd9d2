// Package accounts signs people in and manages tenants, users and teams: password
// hashing, access and refresh tokens, sessions, and the role rules of models.Actor
// applied to every change. HTTP handlers call one method each.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// accountStore is the persistence the service needs; *store.Store implements it.
type accountStore interface {
	CreateTenant(ctx context.Context, t models.Tenant) error
	DeleteTenant(ctx context.Context, id string) error
	Tenant(ctx context.Context, id string) (models.Tenant, error)
	CreateUser(ctx context.Context, u models.User) error
	User(ctx context.Context, tenant, id string) (models.User, error)
	UserByEmail(ctx context.Context, email string) (models.User, error)
	Users(ctx context.Context, tenant string, f models.UserFilter) ([]models.User, error)
	UpdateUser(ctx context.Context, tenant, id string, fields map[string]any) error
	CreateTeam(ctx context.Context, t models.Team) error
	Team(ctx context.Context, tenant, id string) (models.Team, error)
	Teams(ctx context.Context, tenant, managerID string) ([]models.Team, error)
	CreateSession(ctx context.Context, s models.Session) error
	Session(ctx context.Context, id string) (models.Session, error)
	RevokeSession(ctx context.Context, id, reason string, at time.Time) error
	RevokeUserSessions(ctx context.Context, tenant, userID, except, reason string, at time.Time) error
	CreateRefreshToken(ctx context.Context, t models.RefreshToken) error
	RefreshToken(ctx context.Context, hash string) (models.RefreshToken, error)
	ClaimRotation(ctx context.Context, hash string, at time.Time) error
}

// attemptLimiter counts attempts per key across all replicas: failed
// sign-ins and refreshes, or every sign-up.
type attemptLimiter interface {
	// Blocked returns how long key must wait, or 0 when it may try now.
	Blocked(ctx context.Context, key string) (time.Duration, error)
	// Failed counts one failure for key.
	Failed(ctx context.Context, key string) error
	// Reset forgets key's failures after a success.
	Reset(ctx context.Context, key string) error
}

// Service is the account logic. Build it with New.
type Service struct {
	store          accountStore
	limiter        attemptLimiter
	ipLimiter      attemptLimiter
	signupLimiter  attemptLimiter
	refreshLimiter attemptLimiter
	hashes         *hashGate
	signer         *Signer
	password       PasswordParams
	devices        deviceForgetter
	now            func() time.Time
	log            *slog.Logger
	// dummyHash is verified against when an e-mail is unknown, so a wrong e-mail
	// takes as long as a wrong password and response times reveal no accounts.
	dummyHash string
}

// Options configure a Service.
type Options struct {
	Store accountStore
	// Limiter counts failed sign-ins per e-mail: it stops guessing one password.
	Limiter attemptLimiter
	// IPLimiter counts failed sign-ins per client address, with a higher limit
	// (offices share an address): it stops one client trying many e-mails.
	IPLimiter attemptLimiter
	// SignupLimiter, when set, counts every sign-up per client address: sign-up
	// is open to anyone, and each one creates a tenant and hashes a password.
	SignupLimiter attemptLimiter
	// RefreshLimiter, when set, counts refreshes with an unknown token per
	// client address.
	RefreshLimiter attemptLimiter
	Signer         *Signer
	Password       PasswordParams
	// Hashing bounds the password hashes computed at once; zero is
	// DefaultHashLimit(Password).
	Hashing HashLimit
	// Devices, when set, forgets a deactivated user's phones (package notify).
	Devices deviceForgetter
	Now     func() time.Time
	Logger  *slog.Logger
}

// deviceForgetter drops push devices whose sign-in ended (package notify).
type deviceForgetter interface {
	// ForgetUser removes every device of a user.
	ForgetUser(ctx context.Context, tenant, user string) error
	// ForgetSession removes the devices the session registered or is.
	ForgetSession(ctx context.Context, s models.Session) error
	// ForgetUserExcept removes every device of the session's user but the
	// session's own.
	ForgetUserExcept(ctx context.Context, keep models.Session) error
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Password == (PasswordParams{}) {
		o.Password = DefaultPasswordParams
	}
	if o.Hashing == (HashLimit{}) {
		o.Hashing = DefaultHashLimit(o.Password)
	}
	dummy, err := o.Password.HashPassword("fieldcrm-timing-equalizer")
	if err != nil {
		return nil, err
	}
	return &Service{store: o.Store, limiter: o.Limiter, ipLimiter: o.IPLimiter, signupLimiter: o.SignupLimiter, refreshLimiter: o.RefreshLimiter,
		hashes: newHashGate(o.Hashing), signer: o.Signer, password: o.Password, devices: o.Devices,
		now: o.Now, log: o.Logger, dummyHash: dummy}, nil
}

// Tokens is what a successful sign-in or refresh returns.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

// Signup creates a tenant and its first admin and signs the admin in on
// in.DeviceID. Every attempt counts against clientIP's sign-up limit (the
// address of an HTTP client; commands such as demo pass "" and are not
// limited); past it, it returns a *models.RateLimitedError.
func (s *Service) Signup(ctx context.Context, in models.Signup, clientIP string) (Tokens, models.User, error) {
	if s.signupLimiter != nil && clientIP != "" {
		if err := s.checkLimit(ctx, s.signupLimiter, clientIP); err != nil {
			return Tokens{}, models.User{}, fmt.Errorf("signup: %w", err)
		}
		if err := s.signupLimiter.Failed(ctx, clientIP); err != nil {
			return Tokens{}, models.User{}, fmt.Errorf("signup: %w", err)
		}
	}
	in.Normalize()
	if err := in.Validate(); err != nil {
		return Tokens{}, models.User{}, err
	}
	hash, err := s.hash(ctx, in.Password)
	if err != nil {
		return Tokens{}, models.User{}, err
	}
	now := s.now().UTC()
	// The signup's time zone and locale are the tenant's defaults; the admin,
	// like every user who names none, follows them (models.User.InTenant).
	tenant := models.Tenant{ID: models.NewID(), Name: in.CompanyName, CreatedAt: now,
		Settings: models.Settings{TimeZone: in.TimeZone, Locale: in.Locale}}
	if err := s.store.CreateTenant(ctx, tenant); err != nil {
		return Tokens{}, models.User{}, fmt.Errorf("signup: %w", err)
	}
	admin := models.User{
		ID: models.NewID(), TenantID: tenant.ID, Email: in.Email, Name: in.Name, Role: models.RoleAdmin,
		Active: true, PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateUser(ctx, admin); err != nil {
		// No transactions: undo the tenant so a failed signup leaves nothing behind.
		if delErr := s.store.DeleteTenant(context.WithoutCancel(ctx), tenant.ID); delErr != nil {
			s.log.ErrorContext(ctx, "signup: could not remove orphan tenant", "tenant", tenant.ID, "err", delErr)
		}
		if errors.Is(err, models.ErrConflict) {
			return Tokens{}, models.User{}, emailTaken()
		}
		return Tokens{}, models.User{}, fmt.Errorf("signup: %w", err)
	}
	tokens, err := s.startSession(ctx, admin, in.DeviceID)
	return tokens, admin, err
}

func emailTaken() error {
	return fmt.Errorf("%w: %w", models.ErrConflict, &models.ValidationError{Fields: []models.FieldError{{Field: "email", Message: "is already in use"}}})
}

// Login checks a password and starts a session on the given device. Failures are
// counted per e-mail and per client address; past the limit it returns a
// *models.RateLimitedError without checking the password.
func (s *Service) Login(ctx context.Context, in models.Login, clientIP string) (Tokens, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return Tokens{}, err
	}
	limits := []struct {
		limiter attemptLimiter
		key     string
	}{{s.limiter, in.Email}, {s.ipLimiter, clientIP}}
	for _, l := range limits {
		if err := s.checkLimit(ctx, l.limiter, l.key); err != nil {
			return Tokens{}, fmt.Errorf("login: %w", err)
		}
	}
	u, err := s.store.UserByEmail(ctx, in.Email)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	hash := u.PasswordHash
	if err != nil {
		hash = s.dummyHash
	}
	ok, verr := s.verify(ctx, hash, in.Password)
	var busy *models.RateLimitedError
	if errors.As(verr, &busy) {
		return Tokens{}, verr // no slot to check it in: not a failure
	}
	if verr != nil {
		return Tokens{}, fmt.Errorf("login: verify password of user %s: %w", u.ID, verr)
	}
	if err != nil || !ok || !u.Active {
		for _, l := range limits {
			if err := l.limiter.Failed(ctx, l.key); err != nil {
				return Tokens{}, fmt.Errorf("login: %w", err)
			}
		}
		// One message for every cause: it must not reveal which e-mails exist.
		return Tokens{}, &AuthError{Reason: "wrong e-mail or password, or the account is deactivated"}
	}
	if err := s.limiter.Reset(ctx, in.Email); err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	return s.startSession(ctx, u, in.DeviceID)
}

// checkLimit returns a *models.RateLimitedError when key
// must wait before trying again.
func (s *Service) checkLimit(ctx context.Context, l attemptLimiter, key string) error {
	wait, err := l.Blocked(ctx, key)
	if err != nil {
		return err
	}
	if wait > 0 {
		return &models.RateLimitedError{RetryAfterSeconds: int((wait + time.Second - 1) / time.Second)}
	}
	return nil
}

// startSession creates a session (a refresh-token family) and its first tokens.
func (s *Service) startSession(ctx context.Context, u models.User, deviceID string) (Tokens, error) {
	sess := models.Session{ID: models.NewID(), TenantID: u.TenantID, UserID: u.ID, DeviceID: deviceID, CreatedAt: s.now().UTC()}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return Tokens{}, fmt.Errorf("start session: %w", err)
	}
	return s.issue(ctx, u, sess.ID)
}

func (s *Service) issue(ctx context.Context, u models.User, sessionID string) (Tokens, error) {
	access, err := s.signer.Issue(u, sessionID)
	if err != nil {
		return Tokens{}, err
	}
	refresh, hash := newRefreshToken()
	now := s.now().UTC()
	rt := models.RefreshToken{Hash: hash, TenantID: u.TenantID, UserID: u.ID, FamilyID: sessionID,
		IssuedAt: now, ExpiresAt: now.Add(RefreshTokenTTL)}
	if err := s.store.CreateRefreshToken(ctx, rt); err != nil {
		return Tokens{}, fmt.Errorf("store refresh token: %w", err)
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int(AccessTokenTTL / time.Second)}, nil
}

// Refresh exchanges a refresh token for new tokens. Each refresh token works
// once: presenting one that was already exchanged means it was copied, so the
// whole session is revoked (RFC 9700 refresh token rotation) and both holders
// must sign in again. Unknown tokens count against clientIP's limit; past it,
// it returns a *models.RateLimitedError without looking the token up.
func (s *Service) Refresh(ctx context.Context, refreshToken, clientIP string) (Tokens, error) {
	if refreshToken == "" || len(refreshToken) > 200 {
		return Tokens{}, &models.ValidationError{Fields: []models.FieldError{{Field: "refresh_token", Message: "is required"}}}
	}
	if s.refreshLimiter != nil {
		if err := s.checkLimit(ctx, s.refreshLimiter, clientIP); err != nil {
			return Tokens{}, fmt.Errorf("refresh: %w", err)
		}
	}
	hash := hashRefreshToken(refreshToken)
	rt, err := s.store.RefreshToken(ctx, hash)
	if errors.Is(err, models.ErrNotFound) {
		if s.refreshLimiter != nil {
			if err := s.refreshLimiter.Failed(ctx, clientIP); err != nil {
				return Tokens{}, fmt.Errorf("refresh: %w", err)
			}
		}
		return Tokens{}, &AuthError{Reason: "unknown refresh token"}
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	now := s.now().UTC()
	sess, err := s.store.Session(ctx, rt.FamilyID)
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: load session: %w", err)
	}
	if sess.RevokedAt != nil {
		return Tokens{}, &AuthError{Reason: "session ended; sign in again", Kind: SessionEnded}
	}
	if now.After(rt.ExpiresAt) {
		return Tokens{}, &AuthError{Reason: "refresh token expired; sign in again", Kind: SessionEnded}
	}
	if err := s.store.ClaimRotation(ctx, hash, now); err != nil {
		if !errors.Is(err, models.ErrConflict) {
			return Tokens{}, fmt.Errorf("refresh: %w", err)
		}
		if err := s.store.RevokeSession(ctx, sess.ID, "refresh token reuse", now); err != nil {
			return Tokens{}, fmt.Errorf("refresh: revoke reused session: %w", err)
		}
		// Whoever replayed the token may hold the phone's pushes too.
		if err := s.forgetDevices(ctx, sess); err != nil {
			return Tokens{}, fmt.Errorf("refresh: forget the reused session's devices: %w", err)
		}
		s.log.WarnContext(ctx, "refresh token reused; session revoked", "tenant", sess.TenantID, "user", sess.UserID, "session", sess.ID)
		return Tokens{}, &AuthError{Reason: "refresh token already used; session revoked, sign in again", Kind: SessionEnded}
	}
	u, err := s.store.User(ctx, rt.TenantID, rt.UserID)
	if err != nil || !u.Active {
		return Tokens{}, &AuthError{Reason: "account deactivated", Kind: SessionEnded}
	}
	return s.issue(ctx, u, sess.ID)
}

// Logout ends the session: its refresh tokens and access tokens stop
// working, and the devices it registered stop getting pushes (the phone
// signs out; whoever signs in on it next registers it again).
func (s *Service) Logout(ctx context.Context, sessionID string) error {
	sess, err := s.store.Session(ctx, sessionID)
	if err != nil {
		return fmt.Errorf("logout: load the session: %w", err)
	}
	if err := s.store.RevokeSession(ctx, sessionID, "logout", s.now().UTC()); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if err := s.forgetDevices(ctx, sess); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// forgetDevices stops the pushes to the devices of an ended session.
func (s *Service) forgetDevices(ctx context.Context, sess models.Session) error {
	if s.devices == nil {
		return nil
	}
	return s.devices.ForgetSession(ctx, sess)
}

// Authenticate turns an access token into the Actor the request acts for. It
// reads the user and session on every call, so deactivation, role changes and
// logout apply to tokens already issued, at once.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (models.Actor, string, error) {
	claims, err := s.signer.Verify(accessToken)
	if err != nil {
		return models.Actor{}, "", err
	}
	sess, err := s.store.Session(ctx, claims.SessionID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && (sess.RevokedAt != nil || sess.UserID != claims.Subject)) {
		return models.Actor{}, "", &AuthError{Reason: "session ended; sign in again", Kind: SessionEnded}
	}
	if err != nil {
		return models.Actor{}, "", fmt.Errorf("authenticate: %w", err)
	}
	u, err := s.store.User(ctx, claims.TenantID, claims.Subject)
	if errors.Is(err, models.ErrNotFound) || (err == nil && !u.Active) {
		return models.Actor{}, "", &AuthError{Reason: "account deactivated", Kind: SessionEnded}
	}
	if err != nil {
		return models.Actor{}, "", fmt.Errorf("authenticate: %w", err)
	}
	actor, err := s.actorFor(ctx, u)
	actor.DeviceID, actor.SessionID = sess.DeviceID, sess.ID
	return actor, sess.ID, err
}

func (s *Service) actorFor(ctx context.Context, u models.User) (models.Actor, error) {
	a := models.Actor{UserID: u.ID, TenantID: u.TenantID, Role: u.Role, TeamID: u.TeamID}
	if u.Role == models.RoleManager {
		teams, err := s.store.Teams(ctx, u.TenantID, u.ID)
		if err != nil {
			return a, fmt.Errorf("teams managed by %s: %w", u.ID, err)
		}
		for _, t := range teams {
			a.ManagedTeamIDs = append(a.ManagedTeamIDs, t.ID)
		}
	}
	return a, nil
}
