"""Verify Bridgekeeper access tokens with PyJWT (Debian: python3-jwt).

    verifier = AccessTokenVerifier("https://login.example.com", audience="https://api.example.com")
    claims = verifier.verify(token)   # raises jwt.InvalidTokenError

The JWKS is fetched from the issuer's discovery document, cached, and fetched
again when a token names a key that is not in the cache (PyJWKClient).
"""
import json
import urllib.request

import jwt


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

    def verify(self, token):
        """Return the claims of a valid access token; raise jwt.InvalidTokenError otherwise."""
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
