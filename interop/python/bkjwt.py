"""Verify Bridgekeeper access tokens with PyJWT (Debian: python3-jwt).

    verifier = AccessTokenVerifier("https://login.example.com", audience="https://api.example.com")
    claims = verifier.verify(token)   # "Authorization: Bearer"; raises jwt.InvalidTokenError
    claims = verifier.verify_dpop(token, proofs, "GET", "https://api.example.com/api/profile")
                                      # "Authorization: DPoP" with its DPoP header(s) (RFC 9449)

The JWKS is fetched from the issuer's discovery document, cached, and fetched
again when a token names a key that is not in the cache (PyJWKClient).
"""
import base64
import collections
import hashlib
import json
import threading
import time
import urllib.parse
import urllib.request

import jwt

DPOP_ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
PROOF_MAX_AGE = 60  # seconds a DPoP proof is accepted after its iat
PROOF_LEEWAY = 5


class Refused(jwt.InvalidTokenError):
    """A refusal with its RFC 9449 error code: invalid_token, invalid_dpop_proof."""

    def __init__(self, error, description):
        super().__init__(description)
        self.error = error
        self.description = description


class ReplayCache:
    """Proofs seen, by key thumbprint and jti, until they are too old to be accepted
    anyway: a proof is good once. This one serves one process; with several
    replicas, use a store they share (Redis: SET key 1 NX EX 65)."""

    def __init__(self, max_entries=100_000):
        self.max_entries = max_entries
        self.seen = collections.OrderedDict()  # key -> expiry, oldest first
        self.lock = threading.Lock()

    def first_use(self, key, expires_at):
        with self.lock:
            now = time.time()
            while self.seen:
                oldest, expiry = next(iter(self.seen.items()))
                if expiry > now:
                    break
                del self.seen[oldest]
            if key in self.seen or len(self.seen) >= self.max_entries:
                return False  # replayed, or full of live proofs: refuse rather than forget one
            self.seen[key] = expires_at
            return True


def b64sha256(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).rstrip(b"=").decode()


def jwk_thumbprint(jwk):
    """RFC 7638 SHA-256 thumbprint of a public JWK."""
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64sha256(canonical)


def without_query(url):
    """url as htu is compared: scheme and host in lower case, no default port, no query or fragment."""
    parts = urllib.parse.urlsplit(url)
    scheme, host, port = parts.scheme.lower(), parts.hostname or "", parts.port
    if ":" in host:
        host = f"[{host}]"
    if port and (scheme, port) not in (("http", 80), ("https", 443)):
        host += f":{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


class AccessTokenVerifier:
    def __init__(self, issuer, audience, algorithms=("RS256", "ES256"), leeway=30, jwks_lifespan=300):
        with urllib.request.urlopen(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=10) as resp:
            discovery = json.load(resp)
        if discovery.get("issuer") != issuer:
            raise ValueError(f"discovery names issuer {discovery.get('issuer')!r}, want {issuer!r}")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self.jwks = jwt.PyJWKClient(discovery["jwks_uri"], cache_jwk_set=True, lifespan=jwks_lifespan)
        self.replay_cache = ReplayCache()

    def verify(self, token):
        """Return the claims of a valid bearer access token; raise jwt.InvalidTokenError otherwise."""
        claims = self.verify_token(token)
        if "jkt" in claims.get("cnf", {}):
            raise Refused("invalid_token", "DPoP-bound token presented as Bearer")
        return claims

    def verify_dpop(self, token, proofs, method, url):
        """Return the claims of a valid DPoP-bound access token sent with proofs (the
        values of the request's DPoP headers) in a request for method and url (the
        API's public URL, not the Host header's); raise jwt.InvalidTokenError otherwise."""
        claims = self.verify_token(token)
        jkt = claims.get("cnf", {}).get("jkt")
        if not jkt:
            raise Refused("invalid_token", "the token is not DPoP-bound")
        if len(proofs) != 1 or "," in proofs[0]:  # a server may join repeated headers with commas
            raise Refused("invalid_dpop_proof", "one DPoP header is required")
        try:
            thumbprint, jti, iat = self.verify_proof(proofs[0], token, method, url)
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as err:
            raise Refused("invalid_dpop_proof", f"{type(err).__name__}: {err}") from err
        if thumbprint != jkt:
            raise Refused("invalid_token", "Invalid DPoP key binding")
        if not self.replay_cache.first_use(f"{thumbprint}:{jti}", iat + PROOF_MAX_AGE + PROOF_LEEWAY):
            raise Refused("invalid_dpop_proof", "proof already used (or too many proofs in flight)")
        return claims

    @staticmethod
    def verify_proof(proof, token, method, url):
        header = jwt.get_unverified_header(proof)
        if header.get("typ") != "dpop+jwt":
            raise jwt.InvalidTokenError("typ is not dpop+jwt")
        if header.get("alg") not in DPOP_ALGORITHMS:  # never none or HS256
            raise jwt.InvalidAlgorithmError(f"alg {header.get('alg')!r} is not allowed")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or set(jwk) & {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}:
            raise jwt.InvalidKeyError("jwk is not a public key")
        key = jwt.PyJWK(jwk, algorithm=header["alg"])
        claims = jwt.decode(proof, key.key, algorithms=[header["alg"]],
                            options={"require": ["jti", "htm", "htu", "iat", "ath"], "verify_iat": False})
        age = time.time() - int(claims["iat"])
        if not -PROOF_LEEWAY <= age <= PROOF_MAX_AGE + PROOF_LEEWAY:
            raise jwt.InvalidIssuedAtError("iat is too old or in the future")
        if claims["htm"] != method or without_query(claims["htu"]) != without_query(url):
            raise jwt.InvalidTokenError("the proof is for another request")
        if claims["ath"] != b64sha256(token):
            raise jwt.InvalidTokenError("the proof is for another access token")
        return jwk_thumbprint(jwk), claims["jti"], int(claims["iat"])

    def verify_token(self, token):
        """Return the claims of a valid access token, bound or not."""
        header = jwt.get_unverified_header(token)
        typ = str(header.get("typ", "")).lower()
        if typ not in ("at+jwt", "application/at+jwt"):  # RFC 9068: not an ID token
            raise jwt.InvalidTokenError(f"token type {typ!r} is not at+jwt")
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientError as err:
            raise jwt.InvalidTokenError(str(err)) from err
        return jwt.decode(
            token,
            key.key,
            algorithms=self.algorithms,
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )

    @staticmethod
    def scopes(claims):
        return claims.get("scope", "").split()
