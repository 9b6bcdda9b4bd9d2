package api

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// TestClientIPIsTheRightmostUntrustedForwardedAddress: the address limits
// count by, for a peer (app.Test's 0.0.0.0) that is or is not a trusted proxy.
func TestClientIPIsTheRightmostUntrustedForwardedAddress(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		xff     []string
		want    string
	}{
		{"untrusted peer: the header is ignored", nil, []string{"198.51.100.7"}, "0.0.0.0"},
		{"no header", []string{"0.0.0.0"}, nil, "0.0.0.0"},
		{"one hop", []string{"0.0.0.0"}, []string{"198.51.100.7"}, "198.51.100.7"},
		{"forged entries on the left", []string{"0.0.0.0"}, []string{"203.0.113.9, 203.0.113.10, 198.51.100.7"}, "198.51.100.7"},
		{"inner trusted hops are skipped", []string{"0.0.0.0", "10.0.0.0/8"}, []string{"203.0.113.9, 198.51.100.7, 10.1.2.3, 10.0.0.5"}, "198.51.100.7"},
		{"repeated headers are one list", []string{"0.0.0.0", "10.0.0.0/8"}, []string{"203.0.113.9, 198.51.100.7", "10.0.0.5"}, "198.51.100.7"},
		{"garbage stops the walk", []string{"0.0.0.0", "10.0.0.0/8"}, []string{"203.0.113.9, not-an-ip, 10.0.0.5"}, "10.0.0.5"},
		{"IPv6 client", []string{"0.0.0.0"}, []string{"2001:db8::1"}, "2001:db8::1"},
		{"mapped IPv4 is plain IPv4", []string{"0.0.0.0"}, []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps, err := parseProxies(c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			s := &Server{proxies: ps}
			app := fiber.New()
			app.Get("/", func(fc *fiber.Ctx) error { return fc.SendString(s.clientIP(fc)) })
			req := httptest.NewRequest("GET", "/", nil)
			for _, h := range c.xff {
				req.Header.Add("X-Forwarded-For", h)
			}
			res, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(res.Body)
			if string(got) != c.want {
				t.Fatalf("client %q, want %q", got, c.want)
			}
		})
	}
	if _, err := parseProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}
