// A Node API protected by Bridgekeeper access tokens, verified with jose.
//
//   ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:9091 node api.mjs
//
// GET /api/profile needs any valid token; GET|POST /api/checkout needs scope
// "checkout". LISTEN sets the address (default 127.0.0.1:9091; port 0 picks
// one); the first line on stdout is "listening on HOST:PORT".
import http from 'node:http';
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

const issuer = process.env.ISSUER;
const audience = process.env.AUDIENCE;
if (!issuer || !audience) {
  console.error('set ISSUER and AUDIENCE');
  process.exit(2);
}
const [host, port] = (process.env.LISTEN ?? '127.0.0.1:9091').split(/:(?=\d+$)/);

// Discovery tells where the keys are; it must name the same issuer.
const discovery = await (await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)).json();
if (discovery.issuer !== issuer) throw new Error(`discovery names issuer ${discovery.issuer}`);
// The key set is fetched on first use and cached. jose does not read the
// JWKS's Cache-Control, so cacheMaxAge repeats the broker's max-age=300: a
// key the broker stopped publishing is refused within 5 minutes. A token
// naming a key not in the cache makes jose fetch again, at most once per
// cooldownDuration (jose's default, 30 s, would refuse a brand-new key for
// up to 30 s after an emergency rotation).
const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), {
  cacheMaxAge: 300_000,
  cooldownDuration: 5_000,
});

// authenticate returns { payload, scopes } or the error answer to send.
async function authenticate(req) {
  const match = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match) return { status: 401, challenge: 'Bearer realm="api"', error: 'unauthorized' };
  try {
    const { payload } = await jwtVerify(match[1], jwks, {
      issuer,
      audience,
      typ: 'at+jwt', // RFC 9068 access tokens only, not ID tokens
      algorithms: ['RS256', 'ES256'],
      clockTolerance: 30,
    });
    return { payload, scopes: (payload.scope ?? '').split(' ').filter(Boolean) };
  } catch (err) {
    // The broker could not be asked for its keys (down, timeout, not 200):
    // not the token's fault, so 503, as the Go package rp answers.
    const unreachable = !(err instanceof errors.JOSEError) ||
      err.code === 'ERR_JWKS_TIMEOUT' || err.code === 'ERR_JOSE_GENERIC';
    if (unreachable) {
      console.error('JWKS unavailable:', err.message);
      return { status: 503, error: 'temporarily_unavailable', description: 'signing keys unavailable' };
    }
    return {
      status: 401,
      challenge: `Bearer realm="api", error="invalid_token", error_description="${err.code}"`,
      error: 'invalid_token',
      description: err.code,
    };
  }
}

function send(res, status, body, challenge) {
  const headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (challenge) headers['www-authenticate'] = challenge;
  res.writeHead(status, headers).end(JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/api/health') return send(res, 200, { status: 'ok' });
  if (path !== '/api/profile' && path !== '/api/checkout') return send(res, 404, { error: 'not_found' });
  const auth = await authenticate(req);
  if (auth.status) {
    return send(res, auth.status, { error: auth.error, error_description: auth.description }, auth.challenge);
  }
  if (path === '/api/checkout' && !auth.scopes.includes('checkout')) {
    return send(res, 403, { error: 'insufficient_scope', error_description: 'the token lacks scope checkout' },
      'Bearer realm="api", error="insufficient_scope", scope="checkout"');
  }
  send(res, 200, { sub: auth.payload.sub, scopes: auth.scopes, claims: auth.payload });
});

server.listen(Number(port), host, () => {
  const addr = server.address();
  console.log(`listening on ${addr.address}:${addr.port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
