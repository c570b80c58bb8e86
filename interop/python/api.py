"""A Python API protected by Bridgekeeper access tokens, verified with PyJWT.

    ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:9092 python3 api.py

GET /api/profile needs any valid token; GET|POST /api/checkout needs scope
"checkout". LISTEN sets the address (default 127.0.0.1:9092; port 0 picks
one); the first line on stdout is "listening on HOST:PORT".
"""
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt

from bkjwt import AccessTokenVerifier


def make_handler(verifier):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # keep stdout for the address line
            sys.stderr.write("api.py: " + fmt % args + "\n")

        def send_json(self, status, body, challenge=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            if challenge:
                self.send_header("WWW-Authenticate", challenge)
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
            if scheme.lower() != "bearer" or not token.strip():
                return self.send_json(401, {"error": "unauthorized"}, 'Bearer realm="api"')
            try:
                claims = verifier.verify(token.strip())
            except jwt.InvalidTokenError as err:
                description = type(err).__name__
                return self.send_json(
                    401,
                    {"error": "invalid_token", "error_description": description},
                    f'Bearer realm="api", error="invalid_token", error_description="{description}"',
                )
            scopes = verifier.scopes(claims)
            if path == "/api/checkout" and "checkout" not in scopes:
                return self.send_json(
                    403,
                    {"error": "insufficient_scope", "error_description": "the token lacks scope checkout"},
                    'Bearer realm="api", error="insufficient_scope", scope="checkout"',
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
    server = HTTPServer((host, int(port)), make_handler(verifier))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
