package broker

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// encodings are the forms a secret could take in a column.
func encodings(secret []byte) [][]byte {
	return [][]byte{
		secret,
		[]byte(base64.RawURLEncoding.EncodeToString(secret)),
		[]byte(base64.StdEncoding.EncodeToString(secret)),
		[]byte(hex.EncodeToString(secret)),
	}
}

// TestDatabaseHoldsNoUsableSecret is SECURITY.md's threat model from the
// side of a database reader (a stolen backup): after a password login, a
// code exchange, rotated refresh tokens, a confidential client's code flow
// and a client_credentials grant, no column of any table holds a code, a
// refresh or access token, a token's key part, a JWT's signature (the only
// part of a JWT that needs the key), a session or browser-binding cookie, a
// PKCE verifier, a password, a client secret or the signing key's private
// material. What the rows do hold (HMAC token signature parts, session
// hashes, the client secret's hash) gets an attacker nothing over HTTP, and
// the signing keys do not decrypt without the system secret.
func TestDatabaseHoldsNoUsableSecret(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		secrets := map[string][]byte{
			"alice's password":  []byte(userPassword),
			"the api's secret":  []byte(apiSecret),
			"the web's secret":  []byte(webSecret),
			"the system secret": []byte(testSecretB64),
		}
		token := func(name, tok string) {
			secrets[name] = []byte(tok)
			if i := strings.IndexByte(tok, '.'); i > 0 && strings.Count(tok, ".") == 1 {
				secrets[name+"'s key part"] = []byte(tok[:i]) // opaque HMAC tokens: key.signature
			}
			if parts := strings.Split(tok, "."); len(parts) == 3 {
				// A JWT's header and claims are no secret: with its
				// signature a reader would have the token.
				secrets[name+"'s signature"] = []byte(parts[2])
			}
		}

		// The SPA: a password login, a code exchange, two rotations.
		br := e.browser()
		ar := spaAuth()
		code := br.loginForCode(ar)
		token("the SPA's code", code)
		secrets["the SPA's PKCE verifier"] = []byte(ar.verifier)
		first := mustOK(t, e.exchange(code, ar))
		second := mustOK(t, e.refresh(first.RefreshToken))
		third := mustOK(t, e.refresh(second.RefreshToken))
		for i, tr := range []tokenResponse{first, second, third} {
			token(fmt.Sprintf("SPA refresh token %d", i+1), tr.RefreshToken)
			token(fmt.Sprintf("SPA access token %d", i+1), tr.AccessToken)
		}

		// The confidential web client's code flow in the same browser
		// (silent, from the session), and a client_credentials token.
		wv := newVerifier()
		wp := url.Values{
			"response_type": {"code"}, "client_id": {webID}, "redirect_uri": {webRedirect},
			"scope": {allUserScopes}, "state": {testState}, "nonce": {testNonce},
			"code_challenge": {s256(wv)}, "code_challenge_method": {"S256"},
		}
		wcode := redirectParams(t, br.get(e.issuer+pathAuth+"?"+wp.Encode()), webRedirect).Get("code")
		if wcode == "" {
			t.Fatal("no code for the web client")
		}
		token("the web's code", wcode)
		web := mustOK(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {wcode},
			"redirect_uri": {webRedirect}, "code_verifier": {wv}}, webID, webSecret))
		token("the web's refresh token", web.RefreshToken)
		token("the web's access token", web.AccessToken)
		cc := mustOK(t, e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, apiID, apiSecret))
		token("the api's client_credentials token", cc.AccessToken)

		// A login left pending: its id is in the page, not in the database.
		pending := e.browser()
		secrets["a pending login's id"] = []byte(loginID(t, pending.get(e.authURL(spaAuth()))))

		issuerURL, _ := url.Parse(e.issuer)
		cookies := br.c.Jar.Cookies(issuerURL)
		if len(cookies) < 2 {
			t.Fatalf("want the session and binding cookies, got %v", cookies)
		}
		for _, c := range cookies {
			secrets["cookie "+c.Name] = []byte(c.Value)
		}

		// The signing key's private material, however it might be written.
		priv, ok := e.keys.SigningKey().Key.(*rsa.PrivateKey)
		if !ok {
			t.Fatalf("signing key %T, want RSA", e.keys.SigningKey().Key)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		secrets["the signing key (PKCS#8)"] = der
		secrets["the signing key (PKCS#1)"] = x509.MarshalPKCS1PrivateKey(priv)
		secrets["the signing key's private exponent"] = priv.D.Bytes()
		secrets["the signing key's first prime"] = priv.Primes[0].Bytes()

		dump := storagetest.Dump(t, e.store)
		for _, col := range []string{"refresh_tokens.signature", "authorize_codes.signature", "access_tokens.signature",
			"browser_sessions.id", "pending_logins.id", "signing_keys.private_enc", "clients.secret_hash", "users.password_hash"} {
			if len(dump[col]) == 0 {
				t.Fatalf("no %s in the dump: it reads nothing", col)
			}
		}
		for col, vals := range dump {
			for _, v := range vals {
				for name, s := range secrets {
					for _, enc := range encodings(s) {
						if len(enc) >= 8 && bytes.Contains(v, enc) {
							t.Errorf("%s holds %s", col, name)
						}
					}
				}
			}
		}

		// Passwords are argon2id hashes.
		for _, h := range dump["users.password_hash"] {
			if !bytes.HasPrefix(h, []byte("$argon2id$")) {
				t.Errorf("users.password_hash %.20q… is not an argon2id hash", h)
			}
		}

		// What the rows hold opens nothing. A refresh token's stored
		// signature (behind any key part) refreshes nothing and revokes
		// nothing; the stored session id as the session cookie signs no
		// one in; the stored client secret hash is not the secret.
		for _, sig := range dump["refresh_tokens.signature"] {
			for _, try := range []string{string(sig), "x." + string(sig)} {
				wantTokenError(t, e.refresh(try), http.StatusBadRequest, "invalid_grant")
			}
		}
		for _, h := range dump["clients.secret_hash"] {
			for _, enc := range encodings(h) {
				tr := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, apiID, string(enc))
				wantTokenError(t, tr, http.StatusUnauthorized, "invalid_client")
			}
		}
		copied := e.browser() // control: the cookies themselves do sign in
		copied.c.Jar.SetCookies(issuerURL, cookies)
		if q := redirectParams(t, copied.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect); q.Get("code") == "" {
			t.Fatalf("the copied cookies sign in no one (%v): the planting below proves nothing", q)
		}
		for _, id := range dump["browser_sessions.id"] {
			thief := e.browser()
			var planted []*http.Cookie
			for _, c := range cookies {
				planted = append(planted, &http.Cookie{Name: c.Name, Value: string(id), Path: "/"})
			}
			thief.c.Jar.SetCookies(issuerURL, planted)
			p := thief.get(e.authURL(spaAuth("prompt", "none")))
			if q := redirectParams(t, p, spaRedirect); q.Get("error") != "login_required" || q.Get("code") != "" {
				t.Errorf("the stored session id as a cookie: %v, want login_required", q)
			}
		}
		// The legitimate holders still work: the dump changed nothing.
		mustOK(t, e.refresh(third.RefreshToken))
		if p := br.get(e.authURL(spaAuth("prompt", "none"))); redirectParams(t, p, spaRedirect).Get("code") == "" {
			t.Error("the browser's own session no longer signs in silently")
		}

		// The signing keys decrypt only with the key derived from the
		// system secret.
		_, err = keys.New(context.Background(), e.store, keys.Options{
			EncryptionKey:    bytes.Repeat([]byte{7}, 32),
			MaxTokenLifetime: time.Hour,
		})
		if err == nil || !strings.Contains(err.Error(), "cannot decrypt signing key") {
			t.Errorf("keys with another encryption key: %v, want cannot decrypt", err)
		}
	})
}
