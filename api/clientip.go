package api

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// proxies are the reverse proxies whose X-Forwarded-For is believed.
type proxies []netip.Prefix

// parseProxies reads Config.TrustedProxies: addresses or CIDRs.
func parseProxies(list []string) (proxies, error) {
	var out proxies
	for _, p := range list {
		if strings.Contains(p, "/") {
			prefix, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
			}
			out = append(out, prefix.Masked())
			continue
		}
		addr, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
		}
		addr = addr.Unmap()
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return out, nil
}

func (ps proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address limits are counted by. X-Forwarded-For lists the
// client's address and each proxy's, each proxy appending the address it
// received the request from; only the right end, written by our own proxies,
// can be believed: a client puts whatever it likes on the left (a different
// made-up address on each sign-in attempt would never reach a limit). So,
// when the peer is a trusted proxy, the header is read from the right and
// the first address that is not a trusted proxy is the client. An entry that
// is not an address stops the walk (only a client writes one), and the last
// address believed is the client.
func (s *Server) clientIP(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.Context().RemoteIP().String()
	}
	peer = peer.Unmap()
	if !s.proxies.trusted(peer) {
		return peer.String()
	}
	client := peer
	// Each X-Forwarded-For header in order, as one list (RFC 7239's rule for
	// repeated fields): a proxy may add its own header rather than append.
	var entries []string
	for _, h := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		entries = append(entries, strings.Split(string(h), ",")...)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(entries[i]))
		if err != nil {
			break
		}
		client = addr.Unmap()
		if !s.proxies.trusted(client) {
			break
		}
	}
	return client.String()
}
