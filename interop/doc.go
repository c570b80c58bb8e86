// Package interop holds tests, no code: Bridgekeeper-shaped and
// broker-issued access tokens verified by independent implementations
// running as real APIs — the Go example API (package rp), a Node API on npm
// jose (node/api.mjs), a Python API on PyJWT (python/api.py), a Django API on
// PyJWT (python/django_api.py) — and by coreos/go-oidc in-process, including
// key rotation while they run.
//
// Tests of a runtime that is missing locally are skipped with the command
// that installs it: `npm ci --prefix interop/node`,
// `apt-get install -y python3-jwt python3-django`.
package interop
