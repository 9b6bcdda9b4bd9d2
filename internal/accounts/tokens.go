package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldcrm/fieldcrm/models"
)

// Token lifetimes. Access tokens are short because they are checked without a
// database round trip for their signature; refresh tokens are long because reps
// may stay offline for weeks between syncs.
const (
	AccessTokenTTL  = 15 * time.Minute
	RefreshTokenTTL = 30 * 24 * time.Hour
)

// jwtIssuer is the iss claim; tokens from any other issuer are refused.
const jwtIssuer = "fieldcrm"

// MinSecretBytes is the shortest HMAC secret accepted: 256 bits, as HS256 needs.
const MinSecretBytes = 32

// AccessClaims are the claims of an access token.
type AccessClaims struct {
	TenantID  string      `json:"tid"`
	Role      models.Role `json:"role"`
	SessionID string      `json:"sid"`
	jwt.RegisteredClaims
}

// Signer issues and verifies access tokens with one HMAC secret.
type Signer struct {
	secret []byte
	now    func() time.Time
}

// NewSigner returns a signer; secret must be at least MinSecretBytes long.
func NewSigner(secret []byte, now func() time.Time) (*Signer, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("JWT secret is %d bytes, need at least %d", len(secret), MinSecretBytes)
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{secret: secret, now: now}, nil
}

// Issue returns a signed access token for user in session.
func (s *Signer) Issue(u models.User, sessionID string) (string, error) {
	now := s.now()
	claims := AccessClaims{
		TenantID:  u.TenantID,
		Role:      u.Role,
		SessionID: sessionID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    jwtIssuer,
			Subject:   u.ID,
			ID:        models.NewID(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(AccessTokenTTL)),
		},
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return signed, nil
}

// Verify checks an access token's signature, algorithm, issuer and expiry. The
// algorithm is pinned to HS256, so a token claiming "none" or an RSA algorithm
// is refused before its signature is even looked at.
func (s *Signer) Verify(token string) (AccessClaims, error) {
	var claims AccessClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return s.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(jwtIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
		jwt.WithLeeway(30*time.Second),
	)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return AccessClaims{}, &AuthError{Reason: "access token expired; refresh it", Kind: TokenExpired}
		}
		return AccessClaims{}, &AuthError{Reason: "invalid access token"}
	}
	if claims.Subject == "" || claims.TenantID == "" || claims.SessionID == "" {
		return AccessClaims{}, &AuthError{Reason: "invalid access token"}
	}
	return claims, nil
}

// newRefreshToken returns an opaque refresh token and the hash under which it is
// stored. Only the hash is kept, so a leaked database holds no usable token.
func newRefreshToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token = "rt_" + base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashRefreshToken(token)
}

func hashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// AuthError is a refused credential; it matches models.ErrUnauthenticated and
// says why in words safe to show the client. Kind tells a client what to do
// next: refresh (TokenExpired), sign in again (SessionEnded), or fix what it
// sends (the zero value: a missing, malformed or forged credential).
type AuthError struct {
	Reason string
	Kind   AuthErrorKind
}

// AuthErrorKind sorts refused credentials by what the client should do.
type AuthErrorKind int

const (
	// InvalidCredential is a missing, malformed or forged token, or a wrong password.
	InvalidCredential AuthErrorKind = iota
	// TokenExpired is an access token past its lifetime: refresh it and retry.
	TokenExpired
	// SessionEnded is a session that no refresh can revive (signed out,
	// revoked, refresh token reused or expired, account deactivated): sign in again.
	SessionEnded
)

func (e *AuthError) Error() string        { return "unauthenticated: " + e.Reason }
func (e *AuthError) Is(target error) bool { return target == models.ErrUnauthenticated }
