package models

// TokenOwner is the device of a tenant an FCM token belongs to now. Tokens
// are owned per tenant: one tenant registering a token cannot take it from a
// device of another (which would silence that tenant's reminders), so a
// phone signed in to two tenants holds one registration in each.
type TokenOwner struct {
	Token    string `bson:"token"`
	TenantID string `bson:"tenant_id"`
	UserID   string `bson:"user_id"`
	DeviceID string `bson:"device_id"`
}

// Delivery records one push of one firing of a reminder to one device (its
// ID is DeliveryID's); storing it first is the claim that makes the push
// happen once.
type Delivery struct {
	ID    string `bson:"_id" json:"id"`
	State string `bson:"state" json:"state"` // claimed, sent or failed
	// At is when the state was reached, in Unix milliseconds; a claim older
	// than the worker lease belongs to a worker that died, and may be taken
	// over.
	At    int64  `bson:"at" json:"at"`
	Error string `bson:"error,omitempty" json:"error,omitempty"`
}
