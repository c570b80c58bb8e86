package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// rsaBits is the size of new RSA keys.
const rsaBits = 2048

// keyMaterial is one decrypted key with everything derived from it.
type keyMaterial struct {
	kid     string
	alg     string
	public  crypto.PublicKey
	jwk     jose.JSONWebKey    // public, for the JWKS
	signing *josev3.JSONWebKey // private, for fosite
}

// generate creates a new key of alg and its storage row; the private key is
// encrypted under encKey with the kid as additional data.
func generate(alg string, encKey []byte, now, activateAt time.Time) (*storage.SigningKey, *keyMaterial, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		err = fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	thumb, err := (&jose.JSONWebKey{Key: priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(thumb)
	km, err := newMaterial(kid, alg, priv)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encode private key: %w", err)
	}
	enc, err := seal(encKey, kid, der)
	if err != nil {
		return nil, nil, err
	}
	pub, err := json.Marshal(km.jwk)
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	row := &storage.SigningKey{
		KID:        kid,
		Algorithm:  alg,
		PublicJWK:  pub,
		PrivateEnc: enc,
		CreatedAt:  now,
		ActivateAt: activateAt,
	}
	return row, km, nil
}

// load decrypts a stored key and checks that it fits its algorithm.
func load(encKey []byte, row *storage.SigningKey) (*keyMaterial, error) {
	der, err := open(encKey, row.KID, row.PrivateEnc)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: parse private key: %w", row.KID, err)
	}
	var priv crypto.Signer
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		if row.Algorithm != RS256 || k.N.BitLen() < rsaBits {
			return nil, fmt.Errorf("signing key %s: %d-bit RSA key does not fit algorithm %s", row.KID, k.N.BitLen(), row.Algorithm)
		}
		priv = k
	case *ecdsa.PrivateKey:
		if row.Algorithm != ES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing key %s: ECDSA %s key does not fit algorithm %s", row.KID, k.Curve.Params().Name, row.Algorithm)
		}
		priv = k
	default:
		return nil, fmt.Errorf("signing key %s: unsupported private key type %T", row.KID, parsed)
	}
	return newMaterial(row.KID, row.Algorithm, priv)
}

func newMaterial(kid, alg string, priv crypto.Signer) (*keyMaterial, error) {
	km := &keyMaterial{
		kid:     kid,
		alg:     alg,
		public:  priv.Public(),
		jwk:     jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"},
		signing: &josev3.JSONWebKey{Key: priv, KeyID: kid, Algorithm: alg, Use: "sig"},
	}
	if !km.jwk.Valid() {
		return nil, fmt.Errorf("signing key %s: invalid public key", kid)
	}
	return km, nil
}

// seal encrypts plaintext with AES-256-GCM under key, binding it to kid;
// the result is nonce || ciphertext.
func seal(key []byte, kid string, plaintext []byte) ([]byte, error) {
	sealed, err := secret.Seal(key, plaintext, []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("encrypt signing key: %w", err)
	}
	return sealed, nil
}

// open reverses seal.
func open(key []byte, kid string, sealed []byte) ([]byte, error) {
	plain, err := secret.Open(key, sealed, []byte(kid))
	if errors.Is(err, secret.ErrOpen) {
		return nil, fmt.Errorf("cannot decrypt signing key %s: wrong system secret?", kid)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt signing key %s: %w", kid, err)
	}
	return plain, nil
}

// keyState is an immutable snapshot of the published keys.
type keyState struct {
	current *keyMaterial
	next    *keyMaterial
	// nextCreated is when the next key was published; scheduled rotation
	// happens RotationPeriod later.
	nextCreated time.Time
	byKID       map[string]*keyMaterial
	fingerprint string // kid:state list, to rebuild only on change
	jwks        []byte
	etag        string
}

// buildState assembles a snapshot; the JWKS lists current, next, retired.
func buildState(current, next *keyMaterial, nextCreated time.Time, retired []*keyMaterial) (*keyState, error) {
	s := &keyState{current: current, next: next, nextCreated: nextCreated, byKID: make(map[string]*keyMaterial)}
	var set jose.JSONWebKeySet
	add := func(k *keyMaterial, st State) {
		s.byKID[k.kid] = k
		s.fingerprint += k.kid + ":" + string(st) + ";"
		set.Keys = append(set.Keys, k.jwk)
	}
	add(current, StateCurrent)
	if next != nil {
		add(next, StateNext)
	}
	for _, k := range retired {
		add(k, StateRetired)
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	sum := sha256.Sum256(doc)
	s.jwks = doc
	s.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	return s, nil
}
