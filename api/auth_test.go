package api_test

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignupThenMeShowsAdminOfNewTenant(t *testing.T) {
	h := newHarness(t)
	a := h.signup("Acme Trading", "  Ana@Acme.TEST ")
	r := h.do("GET", "/v1/me", a.access, nil)
	h.expect(r, 200, "me")
	me := r.json(t)
	user := me["user"].(map[string]any)
	if user["email"] != "ana@acme.test" || user["role"] != "admin" || user["active"] != true {
		t.Fatalf("me: %s", r.body)
	}
	if _, leaked := user["password_hash"]; leaked {
		t.Fatal("password hash in response")
	}
	if me["tenant"].(map[string]any)["name"] != "Acme Trading" {
		t.Fatalf("tenant: %s", r.body)
	}
}

func TestSignupWithTakenEmailConflictsAndLeavesNoTenant(t *testing.T) {
	h := newHarness(t)
	h.signup("Acme", "ana@acme.test")
	r := h.do("POST", "/v1/auth/signup", "", map[string]any{
		"company_name": "Other", "name": "Ana", "email": "ANA@acme.test", "password": testPassword,
	})
	h.expect(r, 409, "second signup")
	if !strings.Contains(string(r.body), `"field":"email"`) {
		t.Fatalf("no email field error: %s", r.body)
	}
	tenants, err := h.store.TenantIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) != 1 {
		t.Fatalf("%d tenants after one signup and one refused, want 1: %v", len(tenants), tenants)
	}
}

func TestLoginWrongPasswordAndUnknownEmailLookAlike(t *testing.T) {
	h := newHarness(t)
	h.signup("Acme", "ana@acme.test")
	wrong := h.do("POST", "/v1/auth/login", "", map[string]any{"email": "ana@acme.test", "password": "not the password", "device_id": "d"})
	unknown := h.do("POST", "/v1/auth/login", "", map[string]any{"email": "nobody@acme.test", "password": "not the password", "device_id": "d"})
	h.expect(wrong, 401, "wrong password")
	h.expect(unknown, 401, "unknown e-mail")
	if wrong.json(t)["detail"] != unknown.json(t)["detail"] {
		t.Fatalf("messages differ: %s vs %s", wrong.body, unknown.body)
	}
}

func TestRefreshRotatesAndReuseRevokesTheWholeSession(t *testing.T) {
	h := newHarness(t)
	h.signup("Acme", "ana@acme.test")
	first := h.login("ana@acme.test", testPassword)

	r := h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": first.refresh})
	h.expect(r, 200, "first refresh")
	second := r.json(t)
	if second["refresh_token"] == first.refresh || second["access_token"] == "" {
		t.Fatalf("refresh did not rotate: %s", r.body)
	}
	h.expect(h.do("GET", "/v1/me", second["access_token"].(string), nil), 200, "new access token")

	// The old token again: someone copied it. The whole family dies.
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": first.refresh}), 401, "reuse")
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": second["refresh_token"]}), 401, "rotated token after reuse")
	h.expect(h.do("GET", "/v1/me", second["access_token"].(string), nil), 401, "access token of revoked session")
	h.expect(h.do("GET", "/v1/me", first.access, nil), 401, "first access token of revoked session")

	// Other sessions of the same user are untouched.
	other := h.login("ana@acme.test", testPassword)
	h.expect(h.do("GET", "/v1/me", other.access, nil), 200, "another session")
}

func TestRefreshTokenExpiresAfter30Days(t *testing.T) {
	h := newHarness(t)
	a := h.signup("Acme", "ana@acme.test")
	// A second session started with the first, to be refreshed only once
	// the first one's token has been used just before its end.
	b := h.login("ana@acme.test", testPassword)
	h.clock.Advance(30*24*time.Hour - time.Minute)
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": a.refresh}), 200, "refresh a minute before 30 days")
	h.clock.Advance(2 * time.Minute)
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": b.refresh}), 401, "refresh a minute after 30 days")
}

func TestRefreshBadInput(t *testing.T) {
	h := newHarness(t)
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": "rt_nonsense"}), 401, "unknown token")
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{}), 422, "missing token")
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": 5}), 422, "number token")
}

func TestLogoutEndsAccessAndRefreshTokens(t *testing.T) {
	h := newHarness(t)
	a := h.signup("Acme", "ana@acme.test")
	h.expect(h.do("POST", "/v1/auth/logout", a.access, nil), 204, "logout")
	h.expect(h.do("GET", "/v1/me", a.access, nil), 401, "access after logout")
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": a.refresh}), 401, "refresh after logout")
	h.expect(h.do("POST", "/v1/auth/logout", "", nil), 401, "logout without token")
}

func TestAccessTokenExpiresAfter15Minutes(t *testing.T) {
	h := newHarness(t)
	a := h.signup("Acme", "ana@acme.test")
	h.clock.Advance(14 * time.Minute)
	h.expect(h.do("GET", "/v1/me", a.access, nil), 200, "at 14 minutes")
	h.clock.Advance(2 * time.Minute)
	r := h.do("GET", "/v1/me", a.access, nil)
	h.expect(r, 401, "at 16 minutes")
	if !strings.Contains(r.json(t)["detail"].(string), "expired") {
		t.Fatalf("detail does not say expired: %s", r.body)
	}
	if r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("no WWW-Authenticate header")
	}
}

func TestForgedTokensAreRefused(t *testing.T) {
	h := newHarness(t)
	a := h.signup("Acme", "ana@acme.test")
	parts := strings.Split(a.access, ".")
	enc := base64.RawURLEncoding
	payload, _ := enc.DecodeString(parts[1])
	promoted := strings.Replace(string(payload), `"role":"admin"`, `"role":"admin","x":1`, 1)
	cases := map[string]string{
		"tampered payload":  parts[0] + "." + enc.EncodeToString([]byte(promoted)) + "." + parts[2],
		"bad signature":     parts[0] + "." + parts[1] + "." + enc.EncodeToString([]byte("nope")),
		"alg none":          enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"garbage":           "not-a-jwt",
		"refresh as access": a.refresh,
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			h := h.with(t)
			h.expect(h.do("GET", "/v1/me", token, nil), 401, name)
		})
	}
	h.expect(h.do("GET", "/v1/me", "", nil, "Authorization", "Basic YTpi"), 401, "basic auth")
	h.expect(h.do("GET", "/v1/me", "", nil), 401, "no header")
}

func TestFailedLoginsAreRateLimitedWithRetryAfter(t *testing.T) {
	h := newHarness(t)
	h.signup("Acme", "ana@acme.test")
	for i := range testLoginMaxFailures {
		r := h.do("POST", "/v1/auth/login", "", map[string]any{"email": "ana@acme.test", "password": "wrong password!", "device_id": "d"})
		h.expect(r, 401, "failure "+strconv.Itoa(i))
	}
	r := h.do("POST", "/v1/auth/login", "", map[string]any{"email": "ana@acme.test", "password": testPassword, "device_id": "d"})
	h.expect(r, 429, "right password while blocked")
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry <= int((testLoginWindow-time.Minute)/time.Second) || retry > int(testLoginWindow/time.Second) {
		t.Fatalf("Retry-After %q, want the rest of the %s window", r.header.Get("Retry-After"), testLoginWindow)
	}
	// Another account is not blocked by Ana's failures.
	h.signup("Other", "bo@other.test")
	h.login("bo@other.test", testPassword)
	// A minute before the window ends Ana is still blocked; once it ends,
	// the right password works again.
	h.redis.Advance(testLoginWindow - time.Minute)
	h.expect(h.do("POST", "/v1/auth/login", "", map[string]any{"email": "ana@acme.test", "password": testPassword, "device_id": "d"}), 429, "a minute before the window ends")
	h.redis.Advance(time.Minute)
	h.login("ana@acme.test", testPassword)
}

func TestDeactivatedUserIsLockedOutAtOnce(t *testing.T) {
	h := newHarness(t)
	admin := h.signup("Acme", "ana@acme.test")
	mgr := h.createUser(admin, "max@acme.test", "manager", "")
	h.expect(h.do("GET", "/v1/me", mgr.access, nil), 200, "before")
	h.expect(h.do("PATCH", "/v1/users/"+mgr.id, admin.access, map[string]any{"active": false}), 200, "deactivate")
	h.expect(h.do("GET", "/v1/me", mgr.access, nil), 401, "access token after deactivation")
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": mgr.refresh}), 401, "refresh after deactivation")
	r := h.do("POST", "/v1/auth/login", "", map[string]any{"email": "max@acme.test", "password": testPassword, "device_id": "d"})
	h.expect(r, 401, "login after deactivation")
	// Reactivated, they can sign in again.
	h.expect(h.do("PATCH", "/v1/users/"+mgr.id, admin.access, map[string]any{"active": true}), 200, "reactivate")
	h.login("max@acme.test", testPassword)
}

func TestChangeOwnPasswordNeedsCurrentPassword(t *testing.T) {
	h := newHarness(t)
	a := h.signup("Acme", "ana@acme.test")
	h.expect(h.do("PATCH", "/v1/users/"+a.id, a.access, map[string]any{"password": "a brand new secret"}), 422, "without current")
	h.expect(h.do("PATCH", "/v1/users/"+a.id, a.access, map[string]any{"password": "a brand new secret", "current_password": "wrong one"}), 422, "wrong current")
	h.expect(h.do("PATCH", "/v1/users/"+a.id, a.access, map[string]any{"password": "a brand new secret", "current_password": testPassword}), 200, "right current")
	h.login("ana@acme.test", "a brand new secret")
}

// TestExpiredAndRevokedTokensAnswerDistinctProblemTypes: all three answer
// 401, but a client refreshes on token-expired, signs the user out on
// session-revoked, and fixes its request on unauthenticated.
func TestExpiredAndRevokedTokensAnswerDistinctProblemTypes(t *testing.T) {
	h := newHarness(t)
	a := h.signup("Acme", "ana@acme.test")
	typeOf := func(r response, what string) string {
		t.Helper()
		h.expect(r, 401, what)
		return r.json(t)["type"].(string)
	}
	if got := typeOf(h.do("GET", "/v1/me", "not-a-jwt", nil), "garbage token"); got != "/problems/unauthenticated" {
		t.Errorf("a garbage token answers %s", got)
	}
	if got := typeOf(h.do("GET", "/v1/me", "", nil), "no token"); got != "/problems/unauthenticated" {
		t.Errorf("no token answers %s", got)
	}

	b := h.login("ana@acme.test", testPassword)
	h.expect(h.do("POST", "/v1/auth/logout", b.access, nil), 204, "logout")
	if got := typeOf(h.do("GET", "/v1/me", b.access, nil), "access token of an ended session"); got != "/problems/session-revoked" {
		t.Errorf("an ended session's access token answers %s", got)
	}
	if got := typeOf(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": b.refresh}), "refresh of an ended session"); got != "/problems/session-revoked" {
		t.Errorf("an ended session's refresh token answers %s", got)
	}

	h.clock.Advance(16 * time.Minute)
	if got := typeOf(h.do("GET", "/v1/me", a.access, nil), "expired access token"); got != "/problems/token-expired" {
		t.Errorf("an expired access token answers %s", got)
	}
	r := h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": a.refresh})
	h.expect(r, 200, "refresh after expiry")
	h.expect(h.do("GET", "/v1/me", r.json(t)["access_token"].(string), nil), 200, "the refreshed token")
	// The refresh token used twice revokes the session: sign in again.
	if got := typeOf(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": a.refresh}), "reused refresh token"); got != "/problems/session-revoked" {
		t.Errorf("a reused refresh token answers %s", got)
	}
}
