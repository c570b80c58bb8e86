//go:build js && wasm

// Package jsbridge implements the oidc client's dependencies with browser
// APIs through syscall/js — fetch, crypto.subtle, a host-provided store,
// Web Locks and BroadcastChannel — and exposes the client to JavaScript.
// It deliberately avoids fmt, net/http and encoding/json to keep the
// WebAssembly module small.
package jsbridge

import (
	"context"
	"errors"
	"syscall/js"

	"github.com/bridgekeeper/bridgekeeper/wasm/oidc"
)

// jsError is a JavaScript exception or rejection seen from Go.
type jsError struct{ v js.Value }

func (e jsError) Error() string {
	if e.v.Type() == js.TypeObject {
		if m := e.v.Get("message"); m.Type() == js.TypeString {
			return m.String()
		}
	}
	return js.Global().Get("String").Invoke(e.v).String()
}

// await waits for a JavaScript promise to settle.
func await(ctx context.Context, p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var onOK, onErr js.Func
	onOK = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: arg(args, 0)}
		return nil
	})
	onErr = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{err: jsError{arg(args, 0)}}
		return nil
	})
	p.Call("then", onOK, onErr)
	select {
	case r := <-ch:
		onOK.Release()
		onErr.Release()
		return r.v, r.err
	case <-ctx.Done():
		// The callbacks stay alive: the promise may still settle.
		return js.Undefined(), ctx.Err()
	}
}

// call invokes a method that may throw and returns the exception as an error.
func call(v js.Value, method string, args ...any) (res js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			if je, ok := r.(js.Error); ok {
				err = jsError{je.Value}
				return
			}
			err = errors.New("javascript call " + method + " failed")
		}
	}()
	return v.Call(method, args...), nil
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// newPromise runs fn in a goroutine and returns a promise of its result.
func newPromise(fn func() (any, error)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := fn()
			if err != nil {
				reject.Invoke(errorValue(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	p := js.Global().Get("Promise").New(executor)
	executor.Release() // the executor runs synchronously inside new Promise
	return p
}

// errorValue converts err to a JavaScript Error with code and description.
func errorValue(err error) js.Value {
	m := oidc.ErrorMap(err)
	e := js.Global().Get("Error").New(m["message"].(string))
	e.Set("code", m["code"])
	if d, ok := m["description"].(string); ok {
		e.Set("description", d)
	}
	return e
}

// fromJSON turns Go values into JavaScript values through JSON.parse.
func fromJSON(v any) js.Value {
	return js.Global().Get("JSON").Call("parse", oidc.JSON(v))
}

// toMap turns a JavaScript value into generic Go values through JSON.stringify.
func toMap(v js.Value) map[string]any {
	if v.IsUndefined() || v.IsNull() {
		return map[string]any{}
	}
	s := js.Global().Get("JSON").Call("stringify", v)
	if s.Type() != js.TypeString {
		return map[string]any{}
	}
	parsed, err := oidc.ParseJSON([]byte(s.String()))
	if err != nil {
		return map[string]any{}
	}
	m, _ := parsed.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}
