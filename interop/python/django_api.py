"""A Django API protected by Bridgekeeper access tokens, verified with PyJWT:
bearer tokens, and DPoP-bound tokens (RFC 9449) with their proofs.

    ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:9093 python3 django_api.py

One file for the sake of the example; in a project, the decorator goes in a
module of its own and the views use it. GET /api/profile needs any valid
token; GET|POST /api/checkout needs scope "checkout". LISTEN sets the
address (default 127.0.0.1:9093; port 0 picks one); the first line on
stdout is "listening on HOST:PORT". PUBLIC_URL is the API's URL as clients
call it, which DPoP proofs name (default http://LISTEN).
"""
import functools
import os
import signal
import sys

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="unused-by-this-api",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    BRIDGEKEEPER_ISSUER=os.environ.get("ISSUER"),
    BRIDGEKEEPER_AUDIENCE=os.environ.get("AUDIENCE"),
    BRIDGEKEEPER_PUBLIC_URL=os.environ.get("PUBLIC_URL"),  # set at start-up when missing
)
django.setup()

import jwt  # noqa: E402  (Debian: python3-jwt)
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from bkjwt import DPOP_ALGORITHMS, AccessTokenVerifier, Refused  # noqa: E402


@functools.lru_cache(maxsize=None)
def verifier():
    # One per process: it caches the issuer's keys.
    return AccessTokenVerifier(settings.BRIDGEKEEPER_ISSUER, settings.BRIDGEKEEPER_AUDIENCE)


def _challenge(status, error=None, description=None, scope=None, scheme="Bearer"):
    bearer = 'Bearer realm="api"'
    dpop = f'DPoP realm="api", algs="{" ".join(DPOP_ALGORITHMS)}"'
    headers = [bearer, dpop] if not error else [dpop if scheme == "DPoP" else bearer]
    if error:
        headers[0] += f', error="{error}", error_description="{description}"'
    if scope:
        headers[0] += f', scope="{scope}"'
    body = {"error": error or "unauthorized"}
    if description:
        body["error_description"] = description
    response = JsonResponse(body, status=status)
    response["WWW-Authenticate"] = headers[0]  # Django keeps one value per header
    if len(headers) > 1:
        response["WWW-Authenticate"] += ", " + headers[1]
    response["Cache-Control"] = "no-store"
    return response


def bearer_token_required(scope=None):
    """Let a view run only with a valid access token (and scope, if given):
    "Authorization: Bearer", or "Authorization: DPoP" and a DPoP proof for a
    DPoP-bound token. The claims are in request.claims."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            scheme, token = scheme.lower(), token.strip()
            if scheme not in ("bearer", "dpop") or not token:
                return _challenge(401)
            try:
                if scheme == "dpop":
                    proofs = [request.headers["DPoP"]] if "DPoP" in request.headers else []
                    url = settings.BRIDGEKEEPER_PUBLIC_URL + request.path  # not the Host header
                    request.claims = verifier().verify_dpop(token, proofs, request.method, url)
                else:
                    request.claims = verifier().verify(token)
            except Refused as err:  # RFC 9449: answered with a DPoP challenge
                return _challenge(401, err.error, err.description, scheme="DPoP")
            except jwt.InvalidTokenError as err:
                return _challenge(401, "invalid_token", type(err).__name__, scheme="DPoP" if scheme == "dpop" else "Bearer")
            if scope and scope not in request.claims.get("scope", "").split():
                return _challenge(403, "insufficient_scope", f"the token lacks scope {scope}", scope,
                                  scheme="DPoP" if scheme == "dpop" else "Bearer")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


@bearer_token_required()
def profile(request):
    return JsonResponse({"sub": request.claims["sub"], "scopes": request.claims.get("scope", "").split(),
                         "claims": request.claims})


@csrf_exempt  # bearer tokens, not cookies: no CSRF exposure
@bearer_token_required(scope="checkout")
def checkout(request):
    return JsonResponse({"status": "ordered", "sub": request.claims["sub"]})


def health(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("api/health", health),
    path("api/profile", profile),
    path("api/checkout", checkout),
]


def main():
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.wsgi import get_wsgi_application

    if not settings.BRIDGEKEEPER_ISSUER or not settings.BRIDGEKEEPER_AUDIENCE:
        sys.exit("set ISSUER and AUDIENCE")
    verifier()  # fail at start-up, not at the first request, if the issuer is unreachable

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, fmt, *args):
            sys.stderr.write("django_api.py: " + fmt % args + "\n")

    host, _, port = os.environ.get("LISTEN", "127.0.0.1:9093").rpartition(":")
    server = make_server(host, int(port), get_wsgi_application(), handler_class=QuietHandler)
    if not settings.BRIDGEKEEPER_PUBLIC_URL:
        settings.BRIDGEKEEPER_PUBLIC_URL = f"http://{server.server_address[0]}:{server.server_address[1]}"
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
