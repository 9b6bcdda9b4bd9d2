package notify_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/notify"
)

func pushTo(token string) notify.Message {
	return notify.Message{Token: token, Title: "跟进到期", Body: "Call", CollapseKey: "task:1",
		Data: map[string]string{"kind": "task_due", "notification_id": "n1", "task_id": "t1"}}
}

func newTestFCM(t *testing.T, cfg notify.FCMConfig) *notify.FCM {
	t.Helper()
	cfg.ProjectID = "test-project"
	f, err := notify.NewFCM(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The Firebase SDK on its own sleeps through a 503's Retry-After and tries
// again inside Send, while the worker holds the reminder's claim; a second
// worker then took the reminder over and it was pushed twice. One Push is
// one request: the wait is the worker's, recorded and filed in the schedule.
func TestPushIsOneRequestEvenWhenFCMAsksToRetry(t *testing.T) {
	fake := newFakeFCM(t)
	fake.answer("token-phone", fcmAnswer{status: 503, errStatus: "UNAVAILABLE", retryAfter: "3"})
	fcm := newTestFCM(t, notify.FCMConfig{Endpoint: fake.srv.URL})
	err := fcm.Push(context.Background(), pushTo("token-phone"))
	var retry *notify.RetryError
	if !errors.As(err, &retry) || retry.After != 3*time.Second {
		t.Fatalf("a 503 with Retry-After 3: %v, want a RetryError after 3s", err)
	}
	if n := len(fake.to("token-phone")); n != 1 {
		t.Fatalf("%d requests for one push, want 1", n)
	}

	fake.answer("token-phone", fcmAnswer{status: 429, errStatus: "RESOURCE_EXHAUSTED", fcmCode: "QUOTA_EXCEEDED", retryAfter: "7"})
	if err := fcm.Push(context.Background(), pushTo("token-phone")); !errors.As(err, &retry) || retry.After != 7*time.Second {
		t.Fatalf("a 429 with Retry-After 7: %v, want a RetryError after 7s", err)
	}
	fake.answer("token-phone", fcmAnswer{status: 400, errStatus: "INVALID_ARGUMENT", fcmCode: "INVALID_ARGUMENT"})
	if err := fcm.Push(context.Background(), pushTo("token-phone")); err == nil || errors.As(err, &retry) {
		t.Fatalf("a 400: %v, want a failure not worth retrying", err)
	}
	if err := fcm.Push(context.Background(), pushTo("token-phone")); err != nil {
		t.Fatalf("FCM answering again: %v", err)
	}
	if n := len(fake.to("token-phone")); n != 4 {
		t.Fatalf("%d requests for four pushes, want 4", n)
	}
}

// A connection FCM drops is worth retrying, by the worker, not by the SDK
// in a loop of its own.
func TestPushCutOffIsOneAttemptToRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	fcm := newTestFCM(t, notify.FCMConfig{Endpoint: "http://" + ln.Addr().String()})
	err = fcm.Push(context.Background(), pushTo("token-phone"))
	var retry *notify.RetryError
	if !errors.As(err, &retry) {
		t.Fatalf("a dropped connection: %v, want a RetryError", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections for one push, want 1", n)
	}
}

// A push that hangs gives up within the timeout, well inside the claim, and
// asks to be retried.
func TestPushThatHangsGivesUpAndAsksToRetry(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(func() { close(release); hang.Close() })
	fcm := newTestFCM(t, notify.FCMConfig{Endpoint: hang.URL, Timeout: 200 * time.Millisecond})
	err := fcm.Push(context.Background(), pushTo("token-phone"))
	var retry *notify.RetryError
	if !errors.As(err, &retry) {
		t.Fatalf("a push with no answer: %v, want a RetryError", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fcm.Push(ctx, pushTo("token-phone")); err == nil || errors.As(err, &retry) {
		t.Fatalf("a push its caller gave up: %v, want an error that is no retry", err)
	}
}

// With a service account, every push carries the access token the account
// got from its token endpoint (here a local one named in the account file).
func TestPushWithServiceAccountIsAuthenticated(t *testing.T) {
	var tokenRequests atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		if err := r.ParseForm(); err != nil || r.Form.Get("assertion") == "" {
			t.Errorf("token request without a signed assertion: %v %v", err, r.Form)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token": "access-for-fieldcrm", "token_type": "Bearer", "expires_in": 3600}`))
	}))
	t.Cleanup(tokens.Close)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	account, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "test-project", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		"client_email": "fieldcrm@test-project.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": tokens.URL + "/token"})
	file := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(file, account, 0o600); err != nil {
		t.Fatal(err)
	}
	fake := newFakeFCM(t)
	fcm := newTestFCM(t, notify.FCMConfig{Endpoint: fake.srv.URL, CredentialsFile: file})
	for range 2 {
		if err := fcm.Push(context.Background(), pushTo("token-phone")); err != nil {
			t.Fatal(err)
		}
	}
	got := fake.to("token-phone")
	if len(got) != 2 || got[0].Auth != "Bearer access-for-fieldcrm" || got[1].Auth != got[0].Auth {
		t.Fatalf("pushes %+v, want two with the account's access token", got)
	}
	if n := tokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1 (the token is kept until it expires)", n)
	}
}
