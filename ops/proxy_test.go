package ops

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClientIPAndScheme(t *testing.T) {
	nets, err := ParseCIDRs([]string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		remote     string
		xff, proto []string
		tls        bool
		wantIP     string
		wantScheme string
	}{
		{"direct client, no headers", "203.0.113.9:5555", nil, nil, false, "203.0.113.9", "http"},
		{"direct client forging headers", "203.0.113.9:5555", []string{"1.2.3.4"}, []string{"https"}, false, "203.0.113.9", "http"},
		{"direct TLS client forging http", "203.0.113.9:5555", nil, []string{"http"}, true, "203.0.113.9", "https"},
		{"trusted proxy", "10.1.2.3:80", []string{"198.51.100.7"}, []string{"https"}, false, "198.51.100.7", "https"},
		{"client-supplied entry left of the real client", "10.1.2.3:80", []string{"1.2.3.4, 198.51.100.7"}, nil, false, "198.51.100.7", "http"},
		{"chain of trusted proxies", "10.1.2.3:80", []string{"198.51.100.7, 192.168.1.1", "10.9.9.9"}, nil, false, "198.51.100.7", "http"},
		{"all hops trusted", "10.1.2.3:80", []string{"10.0.0.7"}, nil, false, "10.0.0.7", "http"},
		{"garbage hop stops the walk", "10.1.2.3:80", []string{"198.51.100.7, not-an-ip, 10.0.0.5"}, nil, false, "10.0.0.5", "http"},
		{"trusted proxy without headers", "10.1.2.3:80", nil, nil, false, "10.1.2.3", "http"},
		{"bogus proto ignored", "10.1.2.3:80", nil, []string{"javascript"}, false, "10.1.2.3", "http"},
		{"last proto wins", "10.1.2.3:80", nil, []string{"http, HTTPS"}, false, "10.1.2.3", "https"},
		{"IPv6 proxy, IPv4-mapped client", "[fd00::1]:443", []string{"::ffff:198.51.100.7"}, nil, false, "198.51.100.7", "http"},
		{"untrusted IPv6 peer", "[2001:db8::1]:443", []string{"198.51.100.7"}, nil, false, "2001:db8::1", "http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var gotIP, gotScheme, gotRemote, gotPeer string
			h := NewProxies(nets).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotIP, gotScheme, gotRemote, gotPeer = ClientIP(r), Scheme(r), r.RemoteAddr, Peer(r)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = c.remote
			for _, v := range c.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range c.proto {
				req.Header.Add("X-Forwarded-Proto", v)
			}
			if c.tls {
				req.TLS = &tls.ConnectionState{}
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if gotIP != c.wantIP || gotScheme != c.wantScheme {
				t.Errorf("client %s %s, want %s %s", gotIP, gotScheme, c.wantIP, c.wantScheme)
			}
			if peerHost(gotRemote) != c.wantIP {
				t.Errorf("RemoteAddr %s, want host %s", gotRemote, c.wantIP)
			}
			if gotPeer != c.remote {
				t.Errorf("Peer %s, want %s", gotPeer, c.remote)
			}
		})
	}
}

func TestParseCIDRsRefusesGarbage(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "10.0.0.1/8/2"} {
		if _, err := ParseCIDRs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Over real loopback HTTP: headers from 127.0.0.1 count only when loopback
// is trusted.
func TestForwardedHeadersOverLoopback(t *testing.T) {
	for _, trust := range []bool{false, true} {
		var nets []string
		if trust {
			nets = []string{"127.0.0.1/32"}
		}
		prefixes, err := ParseCIDRs(nets)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, ClientIP(r)+" "+Scheme(r))
		}), Options{TrustedProxies: prefixes}))
		req := mustRequest(t, http.MethodGet, srv.URL)
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		req.Header.Set("X-Forwarded-Proto", "https")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		srv.Close()
		want := "127.0.0.1 http"
		if trust {
			want = "198.51.100.7 https"
		}
		if string(b) != want {
			t.Errorf("trust=%v: got %q, want %q", trust, b, want)
		}
	}
}
