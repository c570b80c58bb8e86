//go:build js && wasm

package jsbridge

import (
	"context"
	"errors"
	"syscall/js"

	"github.com/bridgekeeper/bridgekeeper/wasm/oidc"
)

// Fetch is an oidc.Transport on the global fetch. Requests carry no cookies
// (credentials: "omit"): the token endpoint is reached with CORS only.
type Fetch struct{}

// Do implements oidc.Transport.
func (Fetch) Do(ctx context.Context, req oidc.Request) (oidc.Response, error) {
	init := map[string]any{"method": req.Method, "credentials": "omit", "cache": "no-store"}
	if len(req.Header) > 0 {
		init["headers"] = req.Header
	}
	if req.Body != "" {
		init["body"] = req.Body
	}
	p, err := call(js.Global(), "fetch", req.URL, fromJSON(init))
	if err != nil {
		return oidc.Response{}, err
	}
	resp, err := await(ctx, p)
	if err != nil {
		return oidc.Response{}, err
	}
	text, err := await(ctx, resp.Call("text"))
	if err != nil {
		return oidc.Response{}, err
	}
	h := map[string]string{}
	for _, name := range []string{"dpop-nonce", "www-authenticate"} {
		if v := resp.Get("headers").Call("get", name); v.Type() == js.TypeString {
			h[name] = v.String()
		}
	}
	return oidc.Response{Status: resp.Get("status").Int(), Header: h, Body: []byte(text.String())}, nil
}

// RandomValues is a random source on crypto.getRandomValues, the same one
// Go's crypto/rand uses in the browser (which the build leaves out).
type RandomValues struct{}

// Read implements io.Reader.
func (RandomValues) Read(p []byte) (int, error) {
	crypto := js.Global().Get("crypto")
	for off := 0; off < len(p); {
		n := min(len(p)-off, 65536) // getRandomValues' limit per call
		a := js.Global().Get("Uint8Array").New(n)
		if _, err := call(crypto, "getRandomValues", a); err != nil {
			return off, err
		}
		js.CopyBytesToGo(p[off:off+n], a)
		off += n
	}
	return len(p), nil
}

// SubtleVerifier is an oidc.SignatureVerifier on crypto.subtle.
type SubtleVerifier struct{}

// Verify implements oidc.SignatureVerifier.
func (SubtleVerifier) Verify(ctx context.Context, alg string, jwk map[string]any, signed, sig []byte) error {
	hash := "SHA-" + alg[2:]
	var importAlg, verifyAlg map[string]any
	switch alg[:2] {
	case "RS":
		importAlg = map[string]any{"name": "RSASSA-PKCS1-v1_5", "hash": hash}
		verifyAlg = map[string]any{"name": "RSASSA-PKCS1-v1_5"}
	case "PS":
		importAlg = map[string]any{"name": "RSA-PSS", "hash": hash}
		verifyAlg = map[string]any{"name": "RSA-PSS", "saltLength": hashLen(hash)}
	case "ES":
		curve := map[string]string{"SHA-256": "P-256", "SHA-384": "P-384", "SHA-512": "P-521"}[hash]
		importAlg = map[string]any{"name": "ECDSA", "namedCurve": curve}
		verifyAlg = map[string]any{"name": "ECDSA", "hash": hash}
	default:
		return errors.New("unsupported algorithm " + alg)
	}
	// Only the key material: WebCrypto checks alg, use and key_ops itself
	// and would refuse members it does not expect.
	key := map[string]any{}
	for _, k := range []string{"kty", "n", "e", "crv", "x", "y"} {
		if v, ok := jwk[k]; ok {
			key[k] = v
		}
	}
	subtle := js.Global().Get("crypto").Get("subtle")
	p, err := call(subtle, "importKey", "jwk", fromJSON(key), fromJSON(importAlg), false, fromJSON([]string{"verify"}))
	if err != nil {
		return err
	}
	cryptoKey, err := await(ctx, p)
	if err != nil {
		return errors.New("import JWK: " + err.Error())
	}
	p, err = call(subtle, "verify", fromJSON(verifyAlg), cryptoKey, bytesToJS(sig), bytesToJS(signed))
	if err != nil {
		return err
	}
	ok, err := await(ctx, p)
	if err != nil {
		return err
	}
	if !ok.Truthy() {
		return errors.New("signature does not verify")
	}
	return nil
}

func hashLen(hash string) int {
	switch hash {
	case "SHA-384":
		return 48
	case "SHA-512":
		return 64
	}
	return 32
}

func bytesToJS(b []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// HostStore is an oidc.Store on a JavaScript object with async methods
// load(key) → string|null, save(key, value), delete(key). The worker's
// implementation encrypts values with a non-extractable AES-GCM key.
type HostStore struct{ V js.Value }

// Load implements oidc.Store.
func (s HostStore) Load(ctx context.Context, key string) ([]byte, bool, error) {
	p, err := call(s.V, "load", key)
	if err != nil {
		return nil, false, err
	}
	v, err := await(ctx, p)
	if err != nil {
		return nil, false, err
	}
	if v.Type() != js.TypeString {
		return nil, false, nil
	}
	return []byte(v.String()), true, nil
}

// Save implements oidc.Store.
func (s HostStore) Save(ctx context.Context, key string, value []byte) error {
	p, err := call(s.V, "save", key, string(value))
	if err != nil {
		return err
	}
	_, err = await(ctx, p)
	return err
}

// Delete implements oidc.Store.
func (s HostStore) Delete(ctx context.Context, key string) error {
	p, err := call(s.V, "delete", key)
	if err != nil {
		return err
	}
	_, err = await(ctx, p)
	return err
}

// HostProofKey is an oidc.ProofKey on a JavaScript object with methods
// publicJwk() → Promise<JWK>, sign(Uint8Array) → Promise<ArrayBuffer>
// (ECDSA P-256 with SHA-256: r || s), rotate() → Promise and forget().
// The worker's implementation holds a WebCrypto key pair generated with
// extractable: false.
type HostProofKey struct{ V js.Value }

// PublicJWK implements oidc.ProofKey.
func (k HostProofKey) PublicJWK(ctx context.Context) (map[string]any, error) {
	p, err := call(k.V, "publicJwk")
	if err != nil {
		return nil, err
	}
	v, err := await(ctx, p)
	if err != nil {
		return nil, err
	}
	return toMap(v), nil
}

// Sign implements oidc.ProofKey.
func (k HostProofKey) Sign(ctx context.Context, data []byte) ([]byte, error) {
	p, err := call(k.V, "sign", bytesToJS(data))
	if err != nil {
		return nil, err
	}
	v, err := await(ctx, p)
	if err != nil {
		return nil, err
	}
	a := js.Global().Get("Uint8Array").New(v)
	sig := make([]byte, a.Length())
	js.CopyBytesToGo(sig, a)
	return sig, nil
}

// Rotate implements oidc.ProofKey.
func (k HostProofKey) Rotate(ctx context.Context) error {
	p, err := call(k.V, "rotate")
	if err != nil {
		return err
	}
	_, err = await(ctx, p)
	return err
}

// Forget implements oidc.ProofKey.
func (k HostProofKey) Forget() { _, _ = call(k.V, "forget") }

// WebLocks is an oidc.Locker on navigator.locks, exclusive across every
// tab and worker of the origin. Where Web Locks are missing it is a plain
// in-process lock.
type WebLocks struct{}

// WithLock implements oidc.Locker.
func (WebLocks) WithLock(ctx context.Context, name string, fn func(context.Context) error) error {
	locks := js.Global().Get("navigator").Get("locks")
	if locks.IsUndefined() || locks.IsNull() {
		return fn(ctx)
	}
	var fnErr error
	held := js.FuncOf(func(js.Value, []js.Value) any {
		// The lock is held until the returned promise settles.
		return newPromise(func() (any, error) {
			fnErr = fn(ctx)
			return nil, nil
		})
	})
	defer held.Release()
	p, err := call(locks, "request", name, held)
	if err != nil {
		return err
	}
	if _, err := await(ctx, p); err != nil {
		return err
	}
	return fnErr
}

// Channel is an oidc.Broadcaster on a BroadcastChannel.
type Channel struct{ V js.Value }

// Broadcast implements oidc.Broadcaster.
func (c Channel) Broadcast(msg string) {
	if !c.V.IsUndefined() && !c.V.IsNull() {
		_, _ = call(c.V, "postMessage", msg)
	}
}
