// Drives a running Bridgekeeper with openid-client's DPoP handle
// (getDPoPHandle, RFC 9449) for a public client registered with
// --require-dpop, with server nonces on: login (code + PKCE), userinfo and
// refresh with DPoP, and the refusals: the client's requests without a
// proof, its refresh token with another key's proof, its access token as
// Bearer at userinfo.
//
// Environment: BK_ISSUER, BK_PUBLIC_CLIENT, BK_REDIRECT_URI, BK_EMAIL,
// BK_PASSWORD. Prints one line per check; exits non-zero on the first failure.
import * as client from 'openid-client';
import assert from 'node:assert/strict';
import { Browser, loginThroughForm, env, check, expectOAuthError, done } from './shared.mjs';

const issuer = new URL(env('BK_ISSUER'));
const redirectURI = env('BK_REDIRECT_URI');
const insecure = { execute: [client.allowInsecureRequests] }; // http on loopback only

const spa = await client.discovery(issuer, env('BK_PUBLIC_CLIENT'), undefined, client.None(), insecure);
const key = await client.randomDPoPKeyPair('ES256');
const dpop = client.getDPoPHandle(spa, key);
const thief = client.getDPoPHandle(spa, await client.randomDPoPKeyPair('ES256'));
const browser = new Browser(issuer.origin);
let tokens, sub;

await check('discovery advertises the DPoP algorithms', async () => {
  const algs = spa.serverMetadata().dpop_signing_alg_values_supported;
  assert.ok(Array.isArray(algs) && algs.includes('ES256'), `dpop_signing_alg_values_supported ${algs}`);
});

await check('login: code + PKCE redeemed with a DPoP proof (nonce retry included)', async () => {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(spa, {
    redirect_uri: redirectURI,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state, nonce,
  });
  const { url: callback } = await loginThroughForm(browser, url, env('BK_EMAIL'), env('BK_PASSWORD'));
  assert.equal(callback.origin + callback.pathname, redirectURI, `redirected to ${callback}`);
  tokens = await client.authorizationCodeGrant(spa, callback, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }, undefined, { DPoP: dpop });
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  sub = tokens.claims().sub;
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
  assert.ok(claims.cnf?.jkt, 'access token has cnf.jkt');
});

await check('userinfo with DPoP', async () => {
  const info = await client.fetchUserInfo(spa, tokens.access_token, sub, { DPoP: dpop });
  assert.equal(info.email, env('BK_EMAIL'));
});

await check('the access token as Bearer is refused at userinfo', async () => {
  try {
    await client.fetchUserInfo(spa, tokens.access_token, sub);
  } catch (err) {
    const challenge = err.cause?.[0] ?? {};
    assert.equal(err.status ?? err.response?.status ?? 401, 401);
    assert.equal(challenge.scheme, 'dpop', `challenge ${JSON.stringify(err.cause)}`);
    assert.equal(challenge.parameters?.error, 'invalid_token');
    return;
  }
  assert.fail('a DPoP-bound token was accepted as Bearer');
});

await check('refresh with DPoP', async () => {
  const refreshed = await client.refreshTokenGrant(spa, tokens.refresh_token, undefined, { DPoP: dpop });
  assert.equal(refreshed.token_type.toLowerCase(), 'dpop');
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  tokens = refreshed;
});

await check('the refresh token with another key is invalid_grant', async () => {
  await expectOAuthError(client.refreshTokenGrant(spa, tokens.refresh_token, undefined, { DPoP: thief }), 'invalid_grant');
});

await check('the client without a proof is invalid_dpop_proof (require_dpop)', async () => {
  await expectOAuthError(client.refreshTokenGrant(spa, tokens.refresh_token), 'invalid_dpop_proof');
});

await check('the refresh token still works from the key', async () => {
  const refreshed = await client.refreshTokenGrant(spa, tokens.refresh_token, undefined, { DPoP: dpop });
  const info = await client.fetchUserInfo(spa, refreshed.access_token, sub, { DPoP: dpop });
  assert.equal(info.sub, sub);
});

done();
