// A Node API protected by Bridgekeeper access tokens, verified with jose:
// bearer tokens, and DPoP-bound tokens (RFC 9449) with their proofs.
//
//   ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:9091 node api.mjs
//
// GET /api/profile needs any valid token; GET|POST /api/checkout needs scope
// "checkout". LISTEN sets the address (default 127.0.0.1:9091; port 0 picks
// one); the first line on stdout is "listening on HOST:PORT". PUBLIC_URL is
// the API's URL as clients call it, which DPoP proofs name (default
// http://LISTEN).
import { createHash } from 'node:crypto';
import http from 'node:http';
import { EmbeddedJWK, calculateJwkThumbprint, createRemoteJWKSet, errors, jwtVerify } from 'jose';

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

const dpopAlgs = ['ES256', 'RS256', 'PS256', 'EdDSA'];
const proofMaxAge = 60; // seconds a DPoP proof is accepted after its iat
let publicURL = process.env.PUBLIC_URL; // set at start-up when missing

// Proofs seen, by key thumbprint and jti, until they are too old to be
// accepted anyway: a proof is good once. This Map serves one process; with
// several replicas, use a store they share (Redis: SET key 1 NX EX 65).
const seenProofs = new Map();
const maxSeenProofs = 100_000;
function firstUse(key, expiresAt) {
  const now = Date.now();
  for (const [k, exp] of seenProofs) { // oldest first
    if (exp > now && seenProofs.size < maxSeenProofs) break;
    if (exp > now) return false; // full of live proofs: refuse rather than forget one
    seenProofs.delete(k);
  }
  if (seenProofs.has(key)) return false;
  seenProofs.set(key, expiresAt);
  return true;
}

// verifyProof checks the DPoP header of req against the access token it
// goes with and returns the proof's key thumbprint; it throws otherwise.
async function verifyProof(req, accessToken) {
  const proofs = req.headersDistinct.dpop ?? [];
  if (proofs.length !== 1) throw new Error('one DPoP header is required');
  // The key is the proof's own jwk header; EmbeddedJWK refuses a private one.
  const { payload, protectedHeader } = await jwtVerify(proofs[0], EmbeddedJWK, {
    typ: 'dpop+jwt',
    algorithms: dpopAlgs, // never none or HS256
    maxTokenAge: proofMaxAge, // also refuses an iat in the future
    clockTolerance: 5,
    requiredClaims: ['jti', 'htm', 'htu', 'iat', 'ath'],
  });
  const url = new URL(req.url, publicURL);
  const htu = new URL(payload.htu); // compared without query and fragment
  if (payload.htm !== req.method || htu.origin + htu.pathname !== url.origin + url.pathname) {
    throw new Error('the proof is for another request');
  }
  if (payload.ath !== createHash('sha256').update(accessToken).digest('base64url')) {
    throw new Error('the proof is for another access token');
  }
  const thumbprint = await calculateJwkThumbprint(protectedHeader.jwk, 'sha256');
  return { thumbprint, replayKey: `${thumbprint}:${payload.jti}`, expiresAt: (payload.iat + proofMaxAge + 5) * 1000 };
}

function challenges(scheme, error, description) {
  const bearer = 'Bearer realm="api"';
  const dpop = `DPoP realm="api", algs="${dpopAlgs.join(' ')}"`;
  if (!error) return [bearer, dpop];
  const detail = `, error="${error}", error_description="${description}"`;
  return [scheme === 'bearer' ? bearer + detail : dpop + detail];
}

function refuse(scheme, error, description) {
  return { status: 401, challenge: challenges(scheme, error, description), error, description };
}

// authenticate returns { payload, scopes } or the error answer to send.
async function authenticate(req) {
  const match = /^(Bearer|DPoP) +(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match) return { status: 401, challenge: challenges(), error: 'unauthorized' };
  const scheme = match[1].toLowerCase();
  const token = match[2];
  let payload;
  try {
    ({ payload } = await jwtVerify(token, jwks, {
      issuer,
      audience,
      typ: 'at+jwt', // RFC 9068 access tokens only, not ID tokens
      algorithms: ['RS256', 'ES256'],
      clockTolerance: 30,
    }));
  } catch (err) {
    // The broker could not be asked for its keys (down, timeout, not 200):
    // not the token's fault, so 503, as the Go package rp answers.
    const unreachable = !(err instanceof errors.JOSEError) ||
      err.code === 'ERR_JWKS_TIMEOUT' || err.code === 'ERR_JOSE_GENERIC';
    if (unreachable) {
      console.error('JWKS unavailable:', err.message);
      return { status: 503, error: 'temporarily_unavailable', description: 'signing keys unavailable' };
    }
    return refuse(scheme, 'invalid_token', err.code);
  }
  const jkt = payload.cnf?.jkt; // set when the token is bound to a DPoP key
  if (scheme === 'bearer' && jkt) return refuse('dpop', 'invalid_token', 'DPoP-bound token presented as Bearer');
  if (scheme === 'dpop') {
    if (!jkt) return refuse(scheme, 'invalid_token', 'the token is not DPoP-bound');
    let proof;
    try {
      proof = await verifyProof(req, token);
    } catch (err) {
      return refuse(scheme, 'invalid_dpop_proof', err.code ?? err.message);
    }
    if (proof.thumbprint !== jkt) return refuse(scheme, 'invalid_token', 'Invalid DPoP key binding');
    if (!firstUse(proof.replayKey, proof.expiresAt)) {
      return refuse(scheme, 'invalid_dpop_proof', 'proof already used (or too many proofs in flight)');
    }
  }
  return { payload, scopes: (payload.scope ?? '').split(' ').filter(Boolean) };
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
    const scheme = /^dpop /i.test(req.headers.authorization) ? 'DPoP' : 'Bearer';
    return send(res, 403, { error: 'insufficient_scope', error_description: 'the token lacks scope checkout' },
      `${scheme} realm="api", error="insufficient_scope", scope="checkout"`);
  }
  send(res, 200, { sub: auth.payload.sub, scopes: auth.scopes, claims: auth.payload });
});

server.listen(Number(port), host, () => {
  const addr = server.address();
  publicURL ??= `http://${addr.address}:${addr.port}`;
  console.log(`listening on ${addr.address}:${addr.port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
