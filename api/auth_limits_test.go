package api_test

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
)

// testProxies are the proxies the limit tests trust: app.Test's peer
// (0.0.0.0, the load balancer here) and an inner hop.
var testProxies = []string{"0.0.0.0", "10.0.0.0/8"}

// expectRetryAfter fails unless r is a 429 problem with a Retry-After.
func (h *harness) expectRetryAfter(r response, what string) {
	h.t.Helper()
	h.expect(r, 429, what)
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		h.t.Fatalf("%s: Retry-After %q", what, r.header.Get("Retry-After"))
	}
}

// TestForgedForwardedForDoesNotEscapeTheLoginLimit: a client behind the
// trusted proxies that puts made-up addresses on the left of
// X-Forwarded-For is still counted by its own address, the rightmost one
// that is not a trusted proxy, and reaches 429.
func TestForgedForwardedForDoesNotEscapeTheLoginLimit(t *testing.T) {
	const limit = 10
	h := newHarnessWith(t, func(c *harnessConfig) {
		c.api.TrustedProxies = testProxies
		c.loginIPMax, c.loginWindow = limit, time.Hour
	})
	statuses := map[int]int{}
	for i := range 25 {
		// A new e-mail each time: only the per-address limit applies.
		r := h.do("POST", "/v1/auth/login", "", map[string]any{"email": fmt.Sprintf("guess%d@acme.test", i), "password": "wrong password!", "device_id": "d"},
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d, 198.51.100.7, 10.0.0.5", i))
		statuses[r.status]++
		if i >= limit {
			h.expectRetryAfter(r, "attempt "+strconv.Itoa(i+1))
		}
	}
	if statuses[401] != limit || statuses[429] != 25-limit {
		t.Fatalf("statuses %v, want %d × 401 then 429", statuses, limit)
	}
	// Another client behind the same proxies is not blocked by it, nor is
	// one that sends the blocked address on the left of its own.
	for _, xff := range []string{"198.51.100.8", "198.51.100.7, 198.51.100.9"} {
		r := h.do("POST", "/v1/auth/login", "", map[string]any{"email": "other@acme.test", "password": "wrong password!", "device_id": "d"},
			"X-Forwarded-For", xff)
		h.expect(r, 401, "another client "+xff)
	}
}

// TestForwardedForIsIgnoredFromUntrustedPeers: without trusted proxies the
// header is the client's to write and counts for nothing.
func TestForwardedForIsIgnoredFromUntrustedPeers(t *testing.T) {
	h := newHarnessWith(t, func(c *harnessConfig) { c.loginIPMax, c.loginWindow = 3, time.Hour })
	for i := range 4 {
		r := h.do("POST", "/v1/auth/login", "", map[string]any{"email": fmt.Sprintf("g%d@acme.test", i), "password": "wrong password!", "device_id": "d"},
			"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		if i == 3 {
			h.expectRetryAfter(r, "fourth attempt")
		}
	}
}

// TestConcurrentSignupsNeverHashMoreThanTheLimit: 64 sign-ups at once run
// at most HashLimit.Concurrent password hashes at a time; those that find the
// queue full get a 429 problem with Retry-After, and the heap stays far below
// the 64 hashes' worth (64 × 8 MiB) that unbounded hashing takes.
func TestConcurrentSignupsNeverHashMoreThanTheLimit(t *testing.T) {
	const concurrent, queue, burst = 2, 6, 64
	const memKiB = 8 << 10
	h := newHarnessWith(t, func(c *harnessConfig) {
		c.password = accounts.PasswordParams{MemoryKiB: memKiB, Time: 1, Threads: 1}
		// A long wait: whether a queued sign-up is served must not depend on
		// how fast this machine is.
		c.hashing = accounts.HashLimit{Concurrent: concurrent, Queue: queue, Wait: time.Minute}
	})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peakHeap := make(chan uint64)
	go func() {
		var peak uint64
		var m runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peakHeap <- peak
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	responses := make([]response, burst)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			responses[i] = h.do("POST", "/v1/auth/signup", "", map[string]any{
				"company_name": fmt.Sprintf("Burst %d", i), "name": "Admin", "email": fmt.Sprintf("admin%d@burst.test", i), "password": testPassword})
		}()
	}
	close(start)
	wg.Wait()
	close(stop)
	grown := int64(<-peakHeap) - int64(before.HeapInuse)

	created := 0
	for i, r := range responses {
		switch r.status {
		case 201:
			created++
		default:
			h.expectRetryAfter(r, "sign-up "+strconv.Itoa(i))
		}
	}
	if peak := h.accounts.PeakPasswordHashes(); peak > concurrent || peak < 1 {
		t.Fatalf("%d password hashes ran at once, limit %d", peak, concurrent)
	}
	if created < concurrent+queue {
		t.Fatalf("%d sign-ups created, want at least the %d slots and queue places", created, concurrent+queue)
	}
	// Unbounded, the burst holds 64 × 8 MiB = 512 MiB of hashing memory.
	if limit := int64(burst * memKiB << 10 / 4); grown > limit {
		t.Fatalf("heap grew by %d MiB during the burst, more than %d MiB", grown>>20, limit>>20)
	}
	t.Logf("%d of %d sign-ups created, the rest 429; heap grew by %d MiB", created, burst, grown>>20)
}

// TestSignupCanBeTurnedOff: with sign-up closed, POST /v1/auth/signup is a
// 403 problem and creates nothing.
func TestSignupCanBeTurnedOff(t *testing.T) {
	h := newHarnessWith(t, func(c *harnessConfig) { c.api.SignupClosed = true })
	r := h.do("POST", "/v1/auth/signup", "", map[string]any{
		"company_name": "Acme", "name": "Ana", "email": "ana@acme.test", "password": testPassword})
	h.expect(r, 403, "sign-up while closed")
	if p := r.json(t); p["type"] != "/problems/signup-closed" {
		t.Fatalf("problem %v", p)
	}
	r = h.do("POST", "/v1/auth/login", "", map[string]any{"email": "ana@acme.test", "password": testPassword, "device_id": "d"})
	h.expect(r, 401, "login of the refused sign-up")
}

// TestSignupsAreLimitedPerClientAddress: each address may sign up so many
// times per window; another address may still.
func TestSignupsAreLimitedPerClientAddress(t *testing.T) {
	const limit = 3
	h := newHarnessWith(t, func(c *harnessConfig) {
		c.api.TrustedProxies = testProxies
		c.signupMax, c.signupWindow = limit, time.Hour
	})
	signup := func(i int, xff string) response {
		return h.do("POST", "/v1/auth/signup", "", map[string]any{
			"company_name": "Acme", "name": "Ana", "email": fmt.Sprintf("ana%d@acme.test", i), "password": testPassword},
			"X-Forwarded-For", xff)
	}
	for i := range limit {
		h.expect(signup(i, fmt.Sprintf("203.0.113.%d, 198.51.100.7", i)), 201, "sign-up "+strconv.Itoa(i))
	}
	h.expectRetryAfter(signup(limit, "198.51.100.7"), "sign-up past the limit")
	h.expect(signup(limit+1, "198.51.100.8"), 201, "sign-up from another address")
}

// TestRefreshesWithUnknownTokensAreLimitedPerClientAddress: an address that
// keeps presenting unknown refresh tokens gets 429, even for a good one;
// another address may still refresh.
func TestRefreshesWithUnknownTokensAreLimitedPerClientAddress(t *testing.T) {
	const limit = 5
	h := newHarnessWith(t, func(c *harnessConfig) {
		c.api.TrustedProxies = testProxies
		c.refreshMax, c.loginWindow = limit, time.Hour
	})
	ana := h.signup("Acme", "ana@acme.test")
	refresh := func(token, xff string) response {
		return h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": token}, "X-Forwarded-For", xff)
	}
	for i := range limit {
		h.expect(refresh(fmt.Sprintf("guessed-token-%d", i), fmt.Sprintf("203.0.113.%d, 198.51.100.7", i)), 401, "guess "+strconv.Itoa(i))
	}
	h.expectRetryAfter(refresh("guessed-token-x", "198.51.100.7"), "guess past the limit")
	h.expectRetryAfter(refresh(ana.refresh, "198.51.100.7"), "good token from the blocked address")
	h.expect(refresh(ana.refresh, "198.51.100.8"), 200, "good token from another address")
}
