package models

import "time"

// Session is one signed-in device: the family of refresh tokens issued from
// one login. Access tokens name it (claim "sid"), so revoking it ends them at
// once.
type Session struct {
	ID        string     `bson:"_id"`
	TenantID  string     `bson:"tenant_id"`
	UserID    string     `bson:"user_id"`
	DeviceID  string     `bson:"device_id"`
	CreatedAt time.Time  `bson:"created_at"`
	RevokedAt *time.Time `bson:"revoked_at,omitempty"`
	// RevokeReason says why: "logout", "refresh token reuse", "deactivated".
	RevokeReason string `bson:"revoke_reason,omitempty"`
}

// RefreshToken is the stored form of an opaque refresh token: only its
// SHA-256, so a copy of the database signs nobody in.
type RefreshToken struct {
	Hash      string    `bson:"_id"`
	TenantID  string    `bson:"tenant_id"`
	UserID    string    `bson:"user_id"`
	FamilyID  string    `bson:"family_id"`
	IssuedAt  time.Time `bson:"issued_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}
