"""A Python API protected by Bridgekeeper access tokens, verified with PyJWT.

    ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:9092 python3 api.py

GET /api/profile needs any valid token; GET|POST /api/checkout needs scope
"checkout". LISTEN sets the address (default 127.0.0.1:9092; port 0 picks
one); the first line on stdout is "listening on HOST:PORT". PUBLIC_URL is
the API's URL as clients call it, which DPoP proofs name (default
http://LISTEN). Both "Authorization: Bearer" and "Authorization: DPoP" with a
DPoP proof (RFC 9449) are accepted.
"""
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt

from bkjwt import DPOP_ALGORITHMS, AccessTokenVerifier, Refused


def make_handler(verifier, public_url):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # keep stdout for the address line
            sys.stderr.write("api.py: " + fmt % args + "\n")

        def send_json(self, status, body, challenge=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            for c in [challenge] if isinstance(challenge, str) else challenge:
                self.send_header("WWW-Authenticate", c)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/api/health":
                return self.send_json(200, {"status": "ok"})
            if path not in ("/api/profile", "/api/checkout"):
                return self.send_json(404, {"error": "not_found"})
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            scheme, token = scheme.lower(), token.strip()
            if scheme not in ("bearer", "dpop") or not token:
                dpop = f'DPoP realm="api", algs="{" ".join(DPOP_ALGORITHMS)}"'
                return self.send_json(401, {"error": "unauthorized"}, ['Bearer realm="api"', dpop])
            try:
                if scheme == "dpop":
                    proofs = self.headers.get_all("DPoP") or []
                    claims = verifier.verify_dpop(token, proofs, self.command, public_url() + path)
                else:
                    claims = verifier.verify(token)
            except jwt.InvalidTokenError as err:
                error, description = "invalid_token", type(err).__name__
                if isinstance(err, Refused):
                    error, description, scheme = err.error, err.description, "dpop"
                challenge = "DPoP" if scheme == "dpop" else "Bearer"
                return self.send_json(
                    401,
                    {"error": error, "error_description": description},
                    f'{challenge} realm="api", error="{error}", error_description="{description}"',
                )
            scopes = verifier.scopes(claims)
            if path == "/api/checkout" and "checkout" not in scopes:
                return self.send_json(
                    403,
                    {"error": "insufficient_scope", "error_description": "the token lacks scope checkout"},
                    f'{"DPoP" if scheme == "dpop" else "Bearer"} realm="api", error="insufficient_scope", scope="checkout"',
                )
            self.send_json(200, {"sub": claims.get("sub"), "scopes": scopes, "claims": claims})

        do_POST = do_GET

    return Handler


def main():
    issuer, audience = os.environ.get("ISSUER"), os.environ.get("AUDIENCE")
    if not issuer or not audience:
        sys.exit("set ISSUER and AUDIENCE")
    host, _, port = os.environ.get("LISTEN", "127.0.0.1:9092").rpartition(":")
    verifier = AccessTokenVerifier(issuer, audience, jwks_lifespan=int(os.environ.get("JWKS_LIFESPAN", "300")))
    server = HTTPServer((host, int(port)), make_handler(verifier, lambda: public_url))
    public_url = os.environ.get("PUBLIC_URL") or f"http://{server.server_address[0]}:{server.server_address[1]}"
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
