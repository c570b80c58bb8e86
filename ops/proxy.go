package ops

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies decides which peers may speak for the client through
// X-Forwarded-For and X-Forwarded-Proto.
type Proxies struct {
	nets []netip.Prefix
}

// ParseCIDRs parses trusted proxy networks ("10.0.0.0/8", "::1/128"); a
// bare address counts as a single host.
func ParseCIDRs(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("ops: trusted proxy %q: not an address or CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// NewProxies trusts the given networks (none: headers are never believed).
func NewProxies(nets []netip.Prefix) *Proxies { return &Proxies{nets: nets} }

func (p *Proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

type clientKey struct{}

type client struct {
	ip     string
	scheme string
	peer   string // the direct peer's RemoteAddr
}

// Middleware works out each request's client address and scheme. When
// the direct peer is a trusted proxy, the client is the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy, and the scheme
// is the last X-Forwarded-Proto value (http or https); otherwise the
// headers are ignored. r.RemoteAddr is replaced by the client's address,
// so code that keys on it (rate limits) sees the real client.
func (p *Proxies) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := p.resolve(r)
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, c))
		if c.ip != peerHost(r.RemoteAddr) {
			r.RemoteAddr = net.JoinHostPort(c.ip, "0")
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Proxies) resolve(r *http.Request) client {
	c := client{ip: peerHost(r.RemoteAddr), scheme: "http", peer: r.RemoteAddr}
	if r.TLS != nil {
		c.scheme = "https"
	}
	peer, err := netip.ParseAddr(c.ip)
	if err != nil || len(p.nets) == 0 || !p.trusted(peer) {
		return c
	}
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			break // garbage: keep the last address we could vouch for
		}
		c.ip = a.Unmap().String()
		if !p.trusted(a) {
			break
		}
	}
	if protos := forwardedFor(r.Header.Values("X-Forwarded-Proto")); len(protos) > 0 {
		switch v := strings.ToLower(protos[len(protos)-1]); v {
		case "http", "https":
			c.scheme = v
		}
	}
	return c
}

// forwardedFor splits comma-separated header values into trimmed entries.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

func peerHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}

// ClientIP is the request's client address: as worked out by the
// Proxies middleware when it ran, else the host of r.RemoteAddr.
func ClientIP(r *http.Request) string {
	if c, ok := r.Context().Value(clientKey{}).(client); ok {
		return c.ip
	}
	return peerHost(r.RemoteAddr)
}

// Scheme is "https" or "http": as the Proxies middleware worked it out
// when it ran, else from r.TLS.
func Scheme(r *http.Request) string {
	if c, ok := r.Context().Value(clientKey{}).(client); ok {
		return c.scheme
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// Peer is the direct peer's address (r.RemoteAddr before the Proxies
// middleware replaced it).
func Peer(r *http.Request) string {
	if c, ok := r.Context().Value(clientKey{}).(client); ok {
		return c.peer
	}
	return r.RemoteAddr
}
