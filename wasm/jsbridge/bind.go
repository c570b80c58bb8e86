//go:build js && wasm

package jsbridge

import (
	"context"
	"errors"
	"syscall/js"
	"time"

	"github.com/bridgekeeper/bridgekeeper/wasm/oidc"
)

// Register installs globalThis.bridgekeeperCore = {newClient(config, host)}.
//
// config: {issuer, clientId, redirectUri, postLogoutRedirectUri?, scopes?,
// refreshBeforeSeconds?, clockSkewSeconds?}.
// host: {store: {load, save, delete}, channel?: BroadcastChannel,
// onEvent(type, error?)}.
func Register() {
	core := js.Global().Get("Object").New()
	core.Set("newClient", js.FuncOf(func(_ js.Value, args []js.Value) any {
		c, err := newClient(arg(args, 0), arg(args, 1))
		if err != nil {
			return js.Global().Get("Promise").Call("reject", errorValue(err))
		}
		return c
	}))
	js.Global().Set("bridgekeeperCore", core)
}

func newClient(config, host js.Value) (js.Value, error) {
	cfgMap := toMap(config)
	num := func(k string) time.Duration {
		f, _ := cfgMap[k].(float64)
		return time.Duration(f * float64(time.Second))
	}
	var scopes []string
	if list, ok := cfgMap["scopes"].([]any); ok {
		for _, s := range list {
			if s, ok := s.(string); ok {
				scopes = append(scopes, s)
			}
		}
	}
	str := func(k string) string { s, _ := cfgMap[k].(string); return s }
	onEvent := host.Get("onEvent")
	var c *oidc.Client
	var err error
	cfg := oidc.Config{
		Issuer:                str("issuer"),
		ClientID:              str("clientId"),
		RedirectURI:           str("redirectUri"),
		PostLogoutRedirectURI: str("postLogoutRedirectUri"),
		Scopes:                scopes,
		RefreshBefore:         num("refreshBeforeSeconds"),
		ClockSkew:             num("clockSkewSeconds"),
		OnEvent: func(ev oidc.Event) {
			if onEvent.Type() != js.TypeFunction {
				return
			}
			errValue := js.Null()
			if ev.Err != nil {
				errValue = errorValue(ev.Err)
			}
			onEvent.Invoke(ev.Type, errValue, fromJSON(c.View().ToMap()))
		},
	}
	if host.Get("store").IsUndefined() {
		return js.Undefined(), errors.New("host.store is required")
	}
	deps := oidc.Deps{
		Transport:   Fetch{},
		Verifier:    SubtleVerifier{},
		Random:      RandomValues{},
		Store:       HostStore{host.Get("store")},
		Locker:      WebLocks{},
		Broadcaster: Channel{host.Get("channel")},
	}
	c, err = oidc.New(cfg, deps)
	if err != nil {
		return js.Undefined(), err
	}
	return bind(c), nil
}

// bind exposes c as a JavaScript object whose async methods return promises.
func bind(c *oidc.Client) js.Value {
	ctx := context.Background()
	wake := make(chan struct{}, 1)
	o := js.Global().Get("Object").New()
	method := func(name string, fn func(args []js.Value) (any, error)) {
		o.Set(name, js.FuncOf(func(_ js.Value, args []js.Value) any {
			return newPromise(func() (any, error) { return fn(args) })
		}))
	}
	view := func() any { return fromJSON(c.View().ToMap()) }
	started := false

	method("start", func([]js.Value) (any, error) {
		_, err := c.Start(ctx)
		if !started {
			started = true
			go c.RunRefresher(ctx, wake)
		}
		// A network failure at start is part of the view, not a rejection.
		_ = err
		return view(), nil
	})
	method("authorizeUrl", func(args []js.Value) (any, error) {
		return c.AuthorizeURL(ctx, authOptions(toMap(arg(args, 0))))
	})
	method("handleCallback", func(args []js.Value) (any, error) {
		if _, err := c.HandleCallback(ctx, arg(args, 0).String()); err != nil {
			return nil, err
		}
		return view(), nil
	})
	method("getAccessToken", func(args []js.Value) (any, error) {
		min := time.Duration(0)
		if a := arg(args, 0); a.Type() == js.TypeNumber {
			min = time.Duration(a.Float() * float64(time.Second))
		}
		return c.AccessToken(ctx, min)
	})
	method("renew", func(args []js.Value) (any, error) {
		rejected := ""
		if a := arg(args, 0); a.Type() == js.TypeString {
			rejected = a.String()
		}
		return c.Renew(ctx, rejected)
	})
	method("userinfo", func([]js.Value) (any, error) {
		m, err := c.UserInfo(ctx)
		if err != nil {
			return nil, err
		}
		return fromJSON(m), nil
	})
	method("logout", func(args []js.Value) (any, error) {
		opts := toMap(arg(args, 0))
		s := func(k string) string { v, _ := opts[k].(string); return v }
		return c.Logout(ctx, oidc.LogoutOptions{PostLogoutRedirectURI: s("postLogoutRedirectUri"), State: s("state")})
	})
	method("handleBroadcast", func(args []js.Value) (any, error) {
		c.HandleBroadcast(ctx, arg(args, 0).String())
		return view(), nil
	})
	o.Set("view", js.FuncOf(func(js.Value, []js.Value) any { return view() }))
	o.Set("isCallback", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return c.IsCallback(arg(args, 0).String())
	}))
	o.Set("wake", js.FuncOf(func(js.Value, []js.Value) any {
		select {
		case wake <- struct{}{}:
		default:
		}
		return nil
	}))
	return o
}

func authOptions(m map[string]any) oidc.AuthOptions {
	s := func(k string) string { v, _ := m[k].(string); return v }
	o := oidc.AuthOptions{
		Prompt:    s("prompt"),
		ACRValues: s("acrValues"),
		IDPHint:   s("idpHint"),
		LoginHint: s("loginHint"),
		AppState:  s("appState"),
	}
	if f, ok := m["maxAge"].(float64); ok {
		n := int(f)
		o.MaxAge = &n
	}
	if list, ok := m["scopes"].([]any); ok {
		for _, v := range list {
			if v, ok := v.(string); ok {
				o.Scopes = append(o.Scopes, v)
			}
		}
	}
	if extra, ok := m["extraParams"].(map[string]any); ok {
		o.Extra = map[string]string{}
		for k, v := range extra {
			if v, ok := v.(string); ok {
				o.Extra[k] = v
			}
		}
	}
	return o
}
