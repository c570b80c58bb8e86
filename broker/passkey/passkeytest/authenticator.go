// Package passkeytest is a software authenticator for tests: it answers
// the broker's WebAuthn options with registration and sign-in responses
// (ES256, "none" attestation) as a browser would post them, and can tamper
// with them (another challenge, origin or RP ID, truncated data). The CBOR
// is encoded with the library's own encoder (webauthncbor); nothing here
// parses WebAuthn data.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Flags of authenticator data.
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// Authenticator holds one discoverable ES256 credential.
type Authenticator struct {
	Origin     string // the origin the "browser" reports
	RPID       string // the RP ID whose hash goes into authenticator data
	Key        *ecdsa.PrivateKey
	CredID     []byte
	UserHandle []byte // set by Create from the options
	Count      uint32 // the sign counter; each Get adds one first
	Synced     bool   // backup eligible and backed up
}

// New returns an authenticator for origin and rpID with a new key.
func New(origin, rpID string) *Authenticator {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &Authenticator{Origin: origin, RPID: rpID, Key: k, CredID: id}
}

// Tamper changes one thing of an answer.
type Tamper struct {
	Challenge string // replaces the options' challenge (base64url)
	Origin    string // replaces the origin
	RPID      string // the RP ID hashed into authenticator data
	NoUV      bool   // user present but not verified
	Truncate  bool   // cut the attestation object / authenticator data short
	Signature []byte // replaces the signature (sign-in)
}

type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
		AllowCredentials []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

// AllowedCredentials are the credential ids (base64url, sorted) that
// request options list in allowCredentials; an entry of a type other than
// "public-key" is an error.
func AllowedCredentials(optionsJSON string) ([]string, error) {
	var o options
	if err := json.Unmarshal([]byte(optionsJSON), &o); err != nil {
		return nil, fmt.Errorf("passkeytest: request options: %w", err)
	}
	var ids []string
	for _, c := range o.PublicKey.AllowCredentials {
		if c.Type != "public-key" {
			return nil, fmt.Errorf("passkeytest: allowCredentials entry of type %q", c.Type)
		}
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids, nil
}

// CredentialIDs are the authenticators' credential ids (base64url,
// sorted), as AllowedCredentials returns them.
func CredentialIDs(keys ...*Authenticator) []string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, b64(k.CredID))
	}
	slices.Sort(ids)
	return ids
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (a *Authenticator) flags(t Tamper, extra byte) byte {
	f := byte(flagUP|flagUV) | extra
	if t.NoUV {
		f &^= flagUV
	}
	if a.Synced {
		f |= flagBE | flagBS
	}
	return f
}

func (a *Authenticator) clientData(kind, challenge string, t Tamper) []byte {
	if t.Challenge != "" {
		challenge = t.Challenge
	}
	origin := a.Origin
	if t.Origin != "" {
		origin = t.Origin
	}
	cd, _ := json.Marshal(map[string]any{"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return cd
}

func (a *Authenticator) authData(t Tamper, flags byte, count uint32, attested []byte) []byte {
	rp := a.RPID
	if t.RPID != "" {
		rp = t.RPID
	}
	h := sha256.Sum256([]byte(rp))
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, count)
	return append(out, attested...)
}

// Create answers creation options (the JSON the broker's page carries)
// with a registration response (the JSON passkey.js posts).
func (a *Authenticator) Create(optionsJSON string, t Tamper) string {
	var o options
	if err := json.Unmarshal([]byte(optionsJSON), &o); err != nil {
		panic(fmt.Sprintf("passkeytest: creation options: %v", err))
	}
	a.UserHandle, _ = base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	cose, err := webauthncbor.Marshal(map[int]any{
		1: 2, 3: -7, -1: 1, // EC2, ES256, P-256
		-2: a.Key.PublicKey.X.FillBytes(make([]byte, 32)),
		-3: a.Key.PublicKey.Y.FillBytes(make([]byte, 32)),
	})
	if err != nil {
		panic(err)
	}
	att := make([]byte, 16) // AAGUID
	att = binary.BigEndian.AppendUint16(att, uint16(len(a.CredID)))
	att = append(append(att, a.CredID...), cose...)
	obj, err := webauthncbor.Marshal(map[string]any{
		"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(t, a.flags(t, flagAT), a.Count, att),
	})
	if err != nil {
		panic(err)
	}
	if t.Truncate {
		obj = obj[:len(obj)/2]
	}
	resp, _ := json.Marshal(map[string]any{
		"id": b64(a.CredID), "rawId": b64(a.CredID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64(a.clientData("webauthn.create", o.PublicKey.Challenge, t)),
			"attestationObject": b64(obj),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(resp)
}

// Get answers request options with a sign-in response, its counter one
// higher than the last.
func (a *Authenticator) Get(optionsJSON string, t Tamper) string {
	var o options
	if err := json.Unmarshal([]byte(optionsJSON), &o); err != nil {
		panic(fmt.Sprintf("passkeytest: request options: %v", err))
	}
	a.Count++
	ad := a.authData(t, a.flags(t, 0), a.Count, nil)
	cd := a.clientData("webauthn.get", o.PublicKey.Challenge, t)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.Key, digest[:])
	if err != nil {
		panic(err)
	}
	if t.Signature != nil {
		sig = t.Signature
	}
	if t.Truncate {
		ad = ad[:20]
	}
	resp, _ := json.Marshal(map[string]any{
		"id": b64(a.CredID), "rawId": b64(a.CredID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON": b64(cd), "authenticatorData": b64(ad), "signature": b64(sig), "userHandle": b64(a.UserHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(resp)
}
