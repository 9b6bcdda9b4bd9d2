package notify_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFCM is FCM's HTTP v1 send endpoint as far as the Firebase Admin SDK
// sees it: it checks the shape of each request, records it with the time it
// arrived, and answers errors on demand.
type fakeFCM struct {
	t   *testing.T
	srv *httptest.Server
	// now stamps each arrival: the replicas' clock, so a test on a
	// controlled clock sees at which of its instants a push was sent.
	now func() time.Time
	mu  sync.Mutex
	got []pushed
	// answers are queued per token: each request for the token takes the
	// next one; with none left, it succeeds.
	answers map[string][]fcmAnswer
	// hold, when set, keeps each request waiting, once recorded, until it
	// is closed; arrived is told of each such request.
	hold, arrived chan struct{}
}

type pushed struct {
	At       time.Time
	Token    string
	Title    string
	Body     string
	Data     map[string]string
	Collapse string
	// Auth is the request's Authorization header.
	Auth string
}

type fcmAnswer struct {
	status     int
	errStatus  string // google.rpc status, e.g. NOT_FOUND
	fcmCode    string // FcmError errorCode, e.g. UNREGISTERED
	retryAfter string
}

func newFakeFCM(t *testing.T) *fakeFCM {
	f := &fakeFCM{t: t, now: time.Now, answers: map[string][]fcmAnswer{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFCM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/projects/test-project/messages:send") {
		f.t.Errorf("fake FCM: unexpected %s %s", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var req struct {
		Message struct {
			Token        string                       `json:"token"`
			Notification struct{ Title, Body string } `json:"notification"`
			Data         map[string]string            `json:"data"`
			Android      struct {
				CollapseKey string `json:"collapse_key"`
				Priority    string `json:"priority"`
			} `json:"android"`
			APNS struct {
				Headers map[string]string `json:"headers"`
			} `json:"apns"`
		} `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("fake FCM: body is not JSON: %v", err)
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	m := req.Message
	if m.Token == "" || m.Notification.Title == "" || m.Notification.Body == "" || m.Data["kind"] == "" ||
		m.Data["notification_id"] == "" || (m.Data["task_id"] == "" && m.Data["ticket_id"] == "" && m.Data["kind"] != "digest") || m.Android.CollapseKey == "" || m.Android.Priority != "high" ||
		m.APNS.Headers["apns-collapse-id"] != m.Android.CollapseKey {
		f.t.Errorf("fake FCM: malformed message %+v", m)
	}
	f.mu.Lock()
	f.got = append(f.got, pushed{At: f.now(), Token: m.Token, Title: m.Notification.Title, Body: m.Notification.Body,
		Data: m.Data, Collapse: m.Android.CollapseKey, Auth: r.Header.Get("Authorization")})
	var answer *fcmAnswer
	if q := f.answers[m.Token]; len(q) > 0 {
		answer, f.answers[m.Token] = &q[0], q[1:]
	}
	hold, arrived := f.hold, f.arrived
	f.mu.Unlock()
	if hold != nil {
		arrived <- struct{}{}
		<-hold
	}
	if answer == nil {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name": "projects/test-project/messages/%d"}`, time.Now().UnixNano())
		return
	}
	if answer.retryAfter != "" {
		w.Header().Set("Retry-After", answer.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(answer.status)
	details := ""
	if answer.fcmCode != "" {
		details = fmt.Sprintf(`, "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": %q}]`, answer.fcmCode)
	}
	fmt.Fprintf(w, `{"error": {"code": %d, "message": "fake", "status": %q%s}}`, answer.status, answer.errStatus, details)
}

// answer queues answers for the next requests for token.
func (f *fakeFCM) answer(token string, a ...fcmAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[token] = append(f.answers[token], a...)
}

// pushes returns what arrived so far.
func (f *fakeFCM) pushes() []pushed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pushed(nil), f.got...)
}

// to returns the pushes that arrived for token.
func (f *fakeFCM) to(token string) []pushed {
	var out []pushed
	for _, p := range f.pushes() {
		if p.Token == token {
			out = append(out, p)
		}
	}
	return out
}

// kind returns the pushes of one kind that arrived for token.
func (f *fakeFCM) kind(token, kind string) []pushed {
	var out []pushed
	for _, p := range f.to(token) {
		if p.Data["kind"] == kind {
			out = append(out, p)
		}
	}
	return out
}
