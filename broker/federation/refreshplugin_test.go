package federation_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
	"github.com/bridgekeeper/bridgekeeper/plugins"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestPluginKilledMidRefresh kills the connector plugin during a refresh
// grant after the upstream has rotated the user's refresh token and
// before the plugin could answer, so the new upstream token is lost with
// the process. The broker retries the refresh with the stored identity on
// the relaunched plugin while the upstream still accepts the rotated token
// (Okta's grace period, modelled by fakeidp), and saves what that answers:
// the grant keeps working after the grace period has passed.
func TestPluginKilledMidRefresh(t *testing.T) {
	const grace = 4 * time.Second
	entered, release := make(chan struct{}), make(chan struct{})
	var hold atomic.Bool
	e := newEnv(t, envOptions{
		connectors:   oktaOnly,
		idp:          func(c *fakeidp.Config) { c.OktaRefreshGrace = grace },
		brokerConfig: refreshCheckedUpstream,
		upstream: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "refresh_token" || !hold.CompareAndSwap(true, false) {
					h.ServeHTTP(w, r)
					return
				}
				// The upstream rotates the refresh token; its answer is
				// held until the plugin that asked is dead.
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				close(entered)
				<-release
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
			})
		},
	})
	_, tr := e.login(e.browser(), "okta", "1001")
	pid := e.pluginPID("okta")

	hold.Store(true)
	done := make(chan tokens, 1)
	go func() { done <- refreshGrant(e, tr.RefreshToken) }()
	<-entered // the upstream has rotated the refresh token the plugin sent
	rotated := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill plugin %d: %v", pid, err)
	}
	first := <-done
	close(release)
	if first.status != http.StatusOK || first.RefreshToken == "" {
		t.Errorf("the refresh grant during which the plugin was killed: %d %q, want 200 (retried on the relaunched plugin)", first.status, first.Error)
	}
	if n := e.fed.Plugin("okta").Restarts(); n != 1 {
		t.Errorf("plugin restarts = %d, want 1", n)
	}

	// Past the upstream's grace period the token the killed plugin used is
	// refused upstream: the grant lives only if the broker saved the
	// answer of the retry.
	time.Sleep(time.Until(rotated.Add(grace + 500*time.Millisecond)))
	latest := tr.RefreshToken
	if first.RefreshToken != "" {
		latest = first.RefreshToken
	}
	if r := refreshGrant(e, latest); r.status != http.StatusOK || r.RefreshToken == "" {
		t.Errorf("the grant's latest refresh token after the upstream's grace period: %d %q, want 200 (the grant was lost)", r.status, r.Error)
	}
}

// TestRefreshSaveFailsKeepsTheUpstreamToken: when the identity cannot be
// saved after the upstream rotated its refresh token (a trigger makes the
// write fail, as a database going away at that moment would), the grant
// answers 503 and its retry, once the database is back, starts from the
// upstream's new token, not the rotated one: with an upstream that allows
// no reuse of a rotated token at all, the grant lives on. (Before, the
// retry presented the rotated token and the grant was lost.)
func TestRefreshSaveFailsKeepsTheUpstreamToken(t *testing.T) {
	e := newEnv(t, envOptions{
		connectors:   oktaOnly,
		idp:          func(c *fakeidp.Config) { c.OktaRefreshGrace = 0 },
		brokerConfig: refreshCheckedUpstream,
	})
	_, tr := e.login(e.browser(), "okta", "1001")
	restore := storagetest.FailWrites(t, e.store, "UPDATE", "identities")
	if r := e.refresh(tr.RefreshToken); r.status != http.StatusServiceUnavailable {
		t.Fatalf("refresh whose identity cannot be saved: %d %q, want 503", r.status, r.Error)
	}
	restore()
	r := e.refresh(tr.RefreshToken)
	if r.status != http.StatusOK {
		t.Fatalf("the retried refresh once the database is back: %d %q, want 200 (the grant was lost)", r.status, r.Error)
	}
	if r = e.refresh(r.RefreshToken); r.status != http.StatusOK {
		t.Errorf("the next refresh: %d %q, want 200 (the new upstream token was not saved)", r.status, r.Error)
	}
}

// refreshCheckedUpstream wires the broker's refresh grant to the
// federation's upstream re-check, as serve does.
func refreshCheckedUpstream(e *env, c *broker.Config) {
	c.RefreshCheck = func(ctx context.Context, userID, idp string) error { return e.fed.Refresh(ctx, userID, idp) }
}

// TestRefreshChecksAfterACrash: a connector plugin that crashed between
// calls still re-checks users on the next refresh grant (which launches it
// again): a user disabled upstream meanwhile gets invalid_grant. The host
// once forgot a crashed plugin's capabilities until something relaunched
// it, and the grant passed unchecked.
func TestRefreshChecksAfterACrash(t *testing.T) {
	e := newEnv(t, envOptions{connectors: oktaOnly, brokerConfig: refreshCheckedUpstream})
	_, tr := e.login(e.browser(), "okta", "1002")
	pid := e.pluginPID("okta")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p := e.fed.Plugin("okta")
	for deadline := time.Now().Add(10 * time.Second); p.Up(); {
		if time.Now().After(deadline) {
			t.Fatal("the host did not notice the plugin's exit")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.idp.SetUserDisabled("1002", true); err != nil {
		t.Fatal(err)
	}
	if r := e.refresh(tr.RefreshToken); r.status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("refresh of a user disabled upstream after a plugin crash: %d %q, want 400 invalid_grant", r.status, r.Error)
	}
	if n := p.Restarts(); n != 1 {
		t.Errorf("plugin restarts = %d, want 1 (the refresh grant relaunches it)", n)
	}
}

// TestRefreshSkipsAPluginWithoutRefresh: a plugin that declares no refresh
// capability is not called on the refresh grant, and nothing of its
// identity is written again: its connector is no RefreshConnector.
func TestRefreshSkipsAPluginWithoutRefresh(t *testing.T) {
	e := newEnv(t, envOptions{connectors: func(e *env) []config.Connector {
		cs := testConnectorOnly(e)
		cs[0].Config["no_refresh"] = true
		return cs
	}, brokerConfig: refreshCheckedUpstream})
	var calls atomic.Int32
	e.fed.Plugin("test").SetCallObserver(func(c plugins.Call) {
		if c.Method == "Refresh" {
			calls.Add(1)
		}
	})
	br, ar := e.browser(), spaAuth()
	up := e.startUpstream(br, ar, "test")
	back := e.issuer + "/callback/test?" + url.Values{"code": {"ann"}, "state": {up.Query().Get("state")}}.Encode()
	tr := e.exchange(codeFrom(t, br.get(back)), ar)
	before, err := e.store.GetIdentity(context.Background(), "test", "sub-ann")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a write now would change a timestamp
	for range 2 {
		r := e.refresh(tr.RefreshToken)
		if r.status != http.StatusOK {
			t.Fatalf("refresh through a connector without Refresh: %d %q", r.status, r.Error)
		}
		tr = r
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the plugin was asked to refresh %d times", n)
	}
	after, err := e.store.GetIdentity(context.Background(), "test", "sub-ann")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("the identity was written on the refresh grant:\n before %+v\n after  %+v", before, after)
	}
}

// refreshGrant redeems a refresh token, safe to call from any goroutine.
func refreshGrant(e *env, rt string) tokens {
	resp, err := http.PostForm(e.issuer+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}})
	if err != nil {
		return tokens{Error: err.Error()}
	}
	defer resp.Body.Close()
	var tr tokens
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	tr.status = resp.StatusCode
	return tr
}
