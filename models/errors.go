// Package models holds fieldcrm's domain types and the rules that need no I/O:
// validation, normalization and permissions. Everything here is pure Go, so it is
// tested with plain table tests and imported by every other package.
package models

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors shared by every layer. Stores and services wrap them with %w;
// the API maps them to HTTP statuses in one place.
var (
	// ErrNotFound means the record does not exist or is not visible to the caller.
	// Both cases look the same on purpose, so ids of other tenants leak nothing.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness rule was violated (an e-mail already in use).
	ErrConflict = errors.New("conflict")
	// ErrForbidden means the caller may see the record but not do this to it.
	ErrForbidden = errors.New("forbidden")
	// ErrStale means the caller's If-Match version is not the record's current
	// version: someone else changed it since the caller read it.
	ErrStale = errors.New("the record changed since you read it")
	// ErrResyncRequired means a device's sync cursor is older than the deletions
	// the server still keeps: it must reset its local database and sync anew.
	ErrResyncRequired = errors.New("resync required")
	// ErrUnauthenticated means credentials are missing, wrong, expired or revoked.
	ErrUnauthenticated = errors.New("unauthenticated")
)

// FieldError names one invalid input field and says what is wrong with it in words
// a mobile developer can act on.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError collects every problem found in one input, so a client can fix
// them all in one round trip instead of one per request.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add records a problem with field. The message is formatted like fmt.Sprintf.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns e when it holds at least one field error, and nil otherwise, so a
// validator can end with `return v.Err()`.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// RateLimitedError says the caller must wait before trying again.
type RateLimitedError struct {
	RetryAfterSeconds int
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many attempts, retry after %d s", e.RetryAfterSeconds)
}

// UnavailableError says a service the request needs cannot answer for a
// while (Reason says why); the caller retries after RetryAfterSeconds.
type UnavailableError struct {
	RetryAfterSeconds int
	Reason            string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s; retry after %d s", e.Reason, e.RetryAfterSeconds)
}

// DuplicateError refuses a new customer that matches existing ones. It matches
// ErrConflict; the candidates let the client offer "open the existing one" or
// "create anyway".
type DuplicateError struct {
	Candidates []DuplicateCandidate
}

// DuplicateCandidate is an existing customer that matches a new one.
type DuplicateCandidate struct {
	ID      string   `json:"id"`
	Number  string   `json:"number"`
	Name    string   `json:"name"`
	Reasons []string `json:"reasons"`
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("matches %d existing customer(s)", len(e.Candidates))
}

// Is makes a DuplicateError match ErrConflict.
func (e *DuplicateError) Is(target error) bool { return target == ErrConflict }
