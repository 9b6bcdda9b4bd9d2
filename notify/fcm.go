package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
)

// Message is one push to one device.
type Message struct {
	Token string
	Title string
	Body  string
	// Data are the ids the app opens (task_id, customer_id…) and the kind.
	Data map[string]string
	// CollapseKey makes a repeat replace the earlier notification on the phone.
	CollapseKey string
}

// ErrTokenGone means FCM no longer knows the token: the app was uninstalled
// or the token was rotated. The device is removed from the registry.
var ErrTokenGone = errors.New("the FCM token is no longer registered")

// RetryError means FCM asked to try again later (429, 5xx); After is its
// Retry-After, or 0 when it gave none.
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("FCM asks to retry (after %s): %v", e.After, e.Err)
}
func (e *RetryError) Unwrap() error { return e.Err }

// FCMConfig says how to reach Firebase Cloud Messaging.
type FCMConfig struct {
	ProjectID string
	// CredentialsFile is a service account JSON file.
	CredentialsFile string
	// Endpoint overrides FCM's address (tests, emulators); it goes with no
	// authentication.
	Endpoint string
}

// FCM sends pushes through the Firebase Admin SDK.
type FCM struct {
	client *messaging.Client
}

// NewFCM returns a sender for cfg.
func NewFCM(ctx context.Context, cfg FCMConfig) (*FCM, error) {
	if cfg.ProjectID == "" {
		return nil, errors.New("FCM: the project id is required")
	}
	var opts []option.ClientOption
	switch {
	case cfg.Endpoint != "":
		opts = append(opts, option.WithEndpoint(cfg.Endpoint), option.WithoutAuthentication())
	case cfg.CredentialsFile != "":
		opts = append(opts, option.WithCredentialsFile(cfg.CredentialsFile))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cfg.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("FCM: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("FCM: %w", err)
	}
	return &FCM{client: client}, nil
}

// Push sends m. Errors are ErrTokenGone, a *RetryError, or a failure that
// retrying would not cure.
func (f *FCM) Push(ctx context.Context, m Message) error {
	ttl := 24 * time.Hour
	msg := &messaging.Message{
		Token:        m.Token,
		Notification: &messaging.Notification{Title: m.Title, Body: m.Body},
		Data:         m.Data,
		Android:      &messaging.AndroidConfig{CollapseKey: m.CollapseKey, Priority: "high", TTL: &ttl},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{"apns-collapse-id": m.CollapseKey, "apns-priority": "10"},
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{Sound: "default"}},
		},
	}
	_, err := f.client.Send(ctx, msg)
	switch {
	case err == nil:
		return nil
	case messaging.IsUnregistered(err), messaging.IsSenderIDMismatch(err):
		return fmt.Errorf("%w: %v", ErrTokenGone, err)
	case messaging.IsQuotaExceeded(err), messaging.IsUnavailable(err), messaging.IsInternal(err),
		errorutils.IsResourceExhausted(err), errorutils.IsUnavailable(err), errorutils.IsInternal(err):
		return &RetryError{After: retryAfter(errorutils.HTTPResponse(err)), Err: err}
	}
	return fmt.Errorf("FCM: %w", err)
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(res *http.Response) time.Duration {
	if res == nil {
		return 0
	}
	v := res.Header.Get("Retry-After")
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}

// LogPusher stands in for FCM when it is not configured: notifications
// reach the inbox, and the push is only logged.
type LogPusher struct{ Log *slog.Logger }

// Push logs m without its token.
func (l LogPusher) Push(ctx context.Context, m Message) error {
	l.Log.InfoContext(ctx, "push (FCM not configured)", "title", m.Title, "collapse_key", m.CollapseKey)
	return nil
}
