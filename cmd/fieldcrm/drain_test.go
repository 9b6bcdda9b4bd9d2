package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// heldFCM is a fake FCM send endpoint that holds every request until the
// test releases it, and counts the pushes it received by notification.
type heldFCM struct {
	srv      *httptest.Server
	arrived  chan string // notification ids, as requests arrive
	release  chan struct{}
	released sync.Once
	mu       sync.Mutex
	got      map[string]int
}

func newHeldFCM(t *testing.T) *heldFCM {
	f := &heldFCM{arrived: make(chan string, 16), release: make(chan struct{}), got: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Message struct {
				Data map[string]string `json:"data"`
			} `json:"message"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		id := req.Message.Data["notification_id"]
		f.mu.Lock()
		f.got[id]++
		f.mu.Unlock()
		f.arrived <- id
		select {
		case <-f.release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name": "projects/drain/messages/1"}`)
	}))
	// Released before the server closes, which waits for held requests.
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.answer)
	return f
}

// answer lets every held request, and every later one, be answered.
func (f *heldFCM) answer() { f.released.Do(func() { close(f.release) }) }

func (f *heldFCM) pushes(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[id]
}

// drainWorld is a serve with a tenant, a phone registered for push at f,
// and a task due in a moment; it returns the serve, the admin's token and
// the task's id.
func drainWorld(t *testing.T, f *heldFCM, shutdownTimeout string) (*serveProcess, map[string]string, string, string) {
	t.Helper()
	vars := isolatedVars(t, "drain")
	vars["FCM_PROJECT_ID"], vars["FCM_ENDPOINT"] = "drain", f.srv.URL
	vars["FIELDCRM_SHUTDOWN_TIMEOUT"] = shutdownTimeout
	p, token, _ := serveWithTenant(t, vars, "drain@example.test")
	if status, body := p.call(t, "POST", "/v1/devices", token, map[string]any{"device_id": "phone", "fcm_token": "fcm-phone", "platform": "android", "locale": "en"}); status != 200 {
		t.Fatalf("register device: %d %v", status, body)
	}
	status, customer := p.call(t, "POST", "/v1/customers", token, map[string]any{"name": "Drain Ltd", "kind": "company"})
	if status != 201 {
		t.Fatalf("customer: %d %v", status, customer)
	}
	status, task := p.call(t, "POST", "/v1/tasks", token, map[string]any{"customer_id": customer["id"], "title": "Call back",
		"due_at": time.Now().Add(200 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	if status != 201 {
		t.Fatalf("task: %d %v", status, task)
	}
	return p, vars, token, task["id"].(string)
}

// reminderStates are the states of a task's reminders by kind.
func reminderStates(t *testing.T, p *serveProcess, token, task string) map[string]string {
	t.Helper()
	status, body := p.call(t, "GET", "/v1/tasks/"+task+"/reminders", token, nil)
	if status != 200 {
		t.Fatalf("reminders: %d %v", status, body)
	}
	states := map[string]string{}
	for _, r := range body["data"].([]any) {
		states[r.(map[string]any)["kind"].(string)] = r.(map[string]any)["state"].(string)
	}
	return states
}

// SIGTERM while a push is at FCM: serve stops claiming, waits for that push
// to be answered, records it sent and only then exits. Started again, it
// does not send the reminder a second time.
func TestServeFinishesThePushUnderWayOnSIGTERM(t *testing.T) {
	fcm := newHeldFCM(t)
	p, vars, token, task := drainWorld(t, fcm, "20s")
	var notification string
	select {
	case notification = <-fcm.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the reminder was never pushed")
	}
	p.cancel() // SIGTERM, with the push held at FCM
	select {
	case err := <-p.done:
		t.Fatalf("serve exited with a push under way: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	fcm.answer()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit once the push was answered")
	}

	again := startServe(t, vars)
	defer again.stop(t)
	if states := reminderStates(t, again, token, task); states["task_due"] != "sent" {
		t.Fatalf("after the drain the reminders are %v, want task_due sent", states)
	}
	// The restarted worker has had time for several looks at the schedule
	// (it looks every 100 ms once idle) and its start-up reconciliation.
	time.Sleep(time.Second)
	if n := fcm.pushes(notification); n != 1 {
		t.Fatalf("the reminder was pushed %d times, want once", n)
	}
}

// A push FCM never answers does not hold the process past its shutdown
// timeout: the drain gets three quarters of it.
func TestServeDrainEndsWithinTheShutdownTimeout(t *testing.T) {
	fcm := newHeldFCM(t)
	p, _, _, _ := drainWorld(t, fcm, "2s")
	select {
	case <-fcm.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the reminder was never pushed")
	}
	stopped := time.Now()
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit")
	}
	// 2 s of shutdown, plus closing the store and Redis: well under the
	// notify.DefaultDrain of 15 s a drain not bound to the timeout takes.
	if took := time.Since(stopped); took > 6*time.Second {
		t.Fatalf("serve took %s to stop with FIELDCRM_SHUTDOWN_TIMEOUT=2s", took)
	}
}
