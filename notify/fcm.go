package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"
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
	// Endpoint overrides FCM's address (tests, emulators); without a
	// CredentialsFile it goes with no authentication.
	Endpoint string
	// Timeout bounds one push (0: 10 s). It must stay well under the
	// schedule's claim, or a push hanging on the network outlives the claim
	// and another worker sends the reminder too.
	Timeout time.Duration
}

// FCM sends pushes through the Firebase Admin SDK.
type FCM struct {
	client  *messaging.Client
	timeout time.Duration
}

// NewFCM returns a sender for cfg.
func NewFCM(ctx context.Context, cfg FCMConfig) (*FCM, error) {
	if cfg.ProjectID == "" {
		return nil, errors.New("FCM: the project id is required")
	}
	// Go keeps two idle connections per host by default, so a burst dialled
	// and closed a connection for most pushes: keep as many as the worker
	// sends at once (an emulator or proxy may speak HTTP/1.1, one request
	// per connection at a time; FCM itself speaks HTTP/2).
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 512
	var transport http.RoundTripper = oneAttempt{next: base}
	if cfg.Endpoint == "" || cfg.CredentialsFile != "" {
		// Our own client replaces the SDK's, so it authenticates itself:
		// with the service account, or the machine's default credentials.
		authOpts := []option.ClientOption{option.WithScopes(fcmScopes...)}
		if cfg.CredentialsFile != "" {
			authOpts = append(authOpts, option.WithCredentialsFile(cfg.CredentialsFile))
		}
		var err error
		if transport, err = htransport.NewTransport(ctx, transport, authOpts...); err != nil {
			return nil, fmt.Errorf("FCM credentials: %w", err)
		}
	}
	opts := []option.ClientOption{option.WithHTTPClient(&http.Client{Transport: transport})}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cfg.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("FCM: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("FCM: %w", err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &FCM{client: client, timeout: timeout}, nil
}

// Provider names FCM in the metrics.
func (f *FCM) Provider() string { return "fcm" }

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
	sendCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	_, err := f.client.Send(sendCtx, msg)
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && sendCtx.Err() != nil:
		return &RetryError{Err: fmt.Errorf("no answer from FCM within %s: %w", f.timeout, err)}
	case messaging.IsUnregistered(err), messaging.IsSenderIDMismatch(err):
		return fmt.Errorf("%w: %v", ErrTokenGone, err)
	case messaging.IsQuotaExceeded(err), messaging.IsUnavailable(err), messaging.IsInternal(err),
		errorutils.IsResourceExhausted(err), errorutils.IsUnavailable(err), errorutils.IsInternal(err):
		return &RetryError{After: retryAfter(errorutils.HTTPResponse(err)), Err: err}
	}
	return fmt.Errorf("FCM: %w", err)
}

// fcmScopes are the OAuth scopes of sending: the SDK asks for these among
// others when it builds its own client.
var fcmScopes = []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/firebase.messaging"}

// oneAttempt keeps the Firebase SDK to one request per Push. The SDK retries
// a 503 or a network error by itself, sleeping as long as Retry-After asks
// (up to two minutes, four times) inside Send. The worker holds the
// reminder's claim meanwhile: a sleep longer than the claim let another
// worker take the reminder over and push it a second time. The worker
// retries durably instead (the attempt recorded in MongoDB, the retry filed
// in the schedule), so the SDK must see an answer it passes up at once: a
// 503 goes up as a 500 (its body still says UNAVAILABLE, and Retry-After
// stays), a network error as a 500 saying UNAVAILABLE.
type oneAttempt struct{ next http.RoundTripper }

func (o oneAttempt) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := o.next.RoundTrip(req)
	switch {
	case err != nil && req.Context().Err() != nil:
		return nil, err // given up by the caller: nothing to retry
	case err != nil:
		body, _ := json.Marshal(map[string]any{"error": map[string]any{
			"code": http.StatusServiceUnavailable, "status": "UNAVAILABLE", "message": "could not reach FCM: " + err.Error()}})
		return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 FCM unreachable", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)), Request: req}, nil
	case res.StatusCode == http.StatusServiceUnavailable:
		res.StatusCode, res.Status = http.StatusInternalServerError, "500 (FCM answered 503)"
	}
	return res, nil
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

// Provider names the stand-in in the metrics.
func (l LogPusher) Provider() string { return "log" }

// Push logs m without its token.
func (l LogPusher) Push(ctx context.Context, m Message) error {
	l.Log.InfoContext(ctx, "push (FCM not configured)", "title", m.Title, "collapse_key", m.CollapseKey)
	return nil
}
