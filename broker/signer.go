package broker

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/broker/keys"
)

// newKidSigner is the broker's JWT signer over the key manager's keys.
func newKidSigner(km *keys.Manager) *kidSigner {
	getKey := func(context.Context) (any, error) {
		k := km.SigningKey()
		if k == nil {
			return nil, errors.New("no signing key")
		}
		return k, nil
	}
	return &kidSigner{DefaultSigner: &jwt.DefaultSigner{GetPrivateKey: getKey}, keys: km}
}

// Generate signs claims under header with the current key, as fosite's
// DefaultSigner (through go-jose) does: the protected header is alg, kid,
// typ "JWT" and header's fields (which may replace typ), the payload the
// claims as JSON. It writes the JSON and the signature with the standard
// library: go-jose marshals the claims twice by reflection (normalising
// them first), which cost 5–7 % of a refresh beyond the signatures. A key
// of another kind or algorithm is left to the DefaultSigner.
func (k *kidSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	if header == nil || claims == nil {
		return "", "", errors.New("either claims or header is nil")
	}
	jwk := k.keys.SigningKey()
	if jwk == nil {
		return "", "", errors.New("no signing key")
	}
	switch jwk.Key.(type) {
	case *rsa.PrivateKey:
		if jwk.Algorithm != keys.RS256 {
			return k.DefaultSigner.Generate(ctx, claims, header)
		}
	case *ecdsa.PrivateKey:
		if jwk.Algorithm != keys.ES256 {
			return k.DefaultSigner.Generate(ctx, claims, header)
		}
	default:
		return k.DefaultSigner.Generate(ctx, claims, header)
	}
	buf := jsonBuffers.Get().(*[]byte)
	defer jsonBuffers.Put(buf)
	js, err := appendJWSHeader((*buf)[:0], jwk.Algorithm, jwk.KeyID, header)
	if err != nil {
		return "", "", fmt.Errorf("jwt header: %w", err)
	}
	headerLen := len(js)
	if js, err = appendJSON(js, map[string]any(claims)); err != nil {
		return "", "", fmt.Errorf("jwt claims: %w", err)
	}
	*buf = js

	enc := base64.RawURLEncoding
	tok := make([]byte, 0, enc.EncodedLen(len(js))+2+enc.EncodedLen(512))
	tok = enc.AppendEncode(tok, js[:headerLen])
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, js[headerLen:])
	sig, err := signJWS(jwk.Key, tok)
	if err != nil {
		return "", "", err
	}
	tok = append(tok, '.')
	sigAt := len(tok)
	tok = enc.AppendEncode(tok, sig)
	s := string(tok)
	return s, s[sigAt:], nil
}

// appendJWSHeader appends the protected header go-jose writes: alg, kid
// (when the key has one), typ "JWT", then header's fields but alg, which
// replace those.
func appendJWSHeader(b []byte, alg, kid string, header jwt.Mapper) ([]byte, error) {
	var extra map[string]any
	if h, ok := header.(*jwt.Headers); ok {
		extra = h.Extra // ToMap copies it, leaving out alg
	} else {
		extra = header.ToMap()
	}
	typ := "JWT"
	for name, v := range extra {
		s, ok := v.(string)
		switch {
		case name == "alg":
		case name == "typ" && ok:
			typ = s
		default:
			return appendJWSHeaderMap(b, alg, kid, extra)
		}
	}
	// Only typ: written in encoding/json's (sorted) order.
	b = append(b, `{"alg":`...)
	b, err := appendJSONString(b, alg)
	if err == nil && kid != "" {
		b = append(b, `,"kid":`...)
		b, err = appendJSONString(b, kid)
	}
	if err == nil {
		b = append(b, `,"typ":`...)
		b, err = appendJSONString(b, typ)
	}
	return append(b, '}'), err
}

func appendJWSHeaderMap(b []byte, alg, kid string, extra map[string]any) ([]byte, error) {
	fields := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		fields["kid"] = kid
	}
	for name, v := range extra {
		if name != "alg" {
			fields[name] = v
		}
	}
	return appendJSON(b, fields)
}

// signJWS signs a JWS signing input with RS256 or ES256 (the key's kind).
func signJWS(key any, input []byte) ([]byte, error) {
	digest := sha256.Sum256(input)
	switch key := key.(type) {
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		if err != nil {
			return nil, fmt.Errorf("sign RS256: %w", err)
		}
		return sig, nil
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			return nil, fmt.Errorf("sign ES256: %w", err)
		}
		size := (key.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size) // JWS: r and s, each left-padded
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig, nil
	}
	return nil, fmt.Errorf("unsupported signing key %T", key)
}

var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendJSON appends v as encoding/json marshals it (object keys sorted,
// HTML characters escaped), writing the kinds claims are made of directly
// and leaving every other value, and any string needing escapes, to
// encoding/json (TestAppendJSONMatchesEncodingJSON).
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v)
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case float64:
		// Whole numbers below 2^53 print as integers in encoding/json too.
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 && !(v == 0 && math.Signbit(v)) {
			return strconv.AppendInt(b, int64(v), 10), nil
		}
	case []string:
		return appendJSONStrings(b, v)
	case []any:
		return appendJSONList(b, v, appendJSON)
	case map[string]any:
		return appendJSONObject(b, v)
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, js...), nil
}

func appendJSONStrings(b []byte, v []string) ([]byte, error) {
	return appendJSONList(b, v, appendJSONString)
}

// appendJSONList appends a JSON array (null for nil), each element by
// appendElem.
func appendJSONList[T any](b []byte, v []T, appendElem func([]byte, T) ([]byte, error)) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, e := range v {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendElem(b, e); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

func appendJSONObject(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var buf [24]string // claims sets are smaller: no allocation
	names := buf[:0]
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	b = append(b, '{')
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONString(b, k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = appendJSON(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendJSONString quotes s; a string with anything encoding/json would
// escape (control and HTML characters, quotes, backslashes) or any
// non-ASCII goes through encoding/json.
func appendJSONString(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			js, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			return append(b, js...), nil
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}
