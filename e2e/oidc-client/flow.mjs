// Drives a running Bridgekeeper with openid-client (panva), an OpenID
// Certified relying-party library, with no special casing: discovery,
// code + PKCE through the login form, ID token validation, userinfo,
// refresh rotation, reuse detection, revocation, introspection,
// client_credentials, prompt=none and RP-initiated logout.
//
// Environment: BK_ISSUER, BK_PUBLIC_CLIENT, BK_REDIRECT_URI, BK_POST_LOGOUT_URI,
// BK_CONF_CLIENT, BK_CONF_SECRET, BK_EMAIL, BK_PASSWORD.
// Prints one line per check; exits non-zero on the first failure.
import * as client from 'openid-client';
import assert from 'node:assert/strict';
import { Browser, loginThroughForm, env, check, expectOAuthError, done } from './shared.mjs';

const issuer = new URL(env('BK_ISSUER'));
const redirectURI = env('BK_REDIRECT_URI');
const postLogoutURI = env('BK_POST_LOGOUT_URI');
const insecure = { execute: [client.allowInsecureRequests] }; // http on loopback only

function authorizationRequest(config, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  return client.calculatePKCECodeChallenge(verifier).then((challenge) => ({
    verifier, state, nonce,
    url: client.buildAuthorizationUrl(config, {
      redirect_uri: redirectURI,
      scope: 'openid profile email offline_access',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state, nonce, ...extra,
    }),
  }));
}

const spa = await client.discovery(issuer, env('BK_PUBLIC_CLIENT'), undefined, client.None(), insecure);
const backend = await client.discovery(issuer, env('BK_CONF_CLIENT'), env('BK_CONF_SECRET'), client.ClientSecretBasic(env('BK_CONF_SECRET')), insecure);
const browser = new Browser(issuer.origin);
let tokens, idClaims, rotated;

await check('discovery advertises S256 only and the endpoints', async () => {
  const md = spa.serverMetadata();
  assert.equal(md.issuer, issuer.href.replace(/\/$/, ''));
  assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
  for (const k of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'revocation_endpoint', 'introspection_endpoint', 'end_session_endpoint']) {
    assert.ok(md[k], `${k} present`);
  }
});

await check('code + PKCE through the login form, ID token validated', async () => {
  const req = await authorizationRequest(spa);
  const { url } = await loginThroughForm(browser, req.url, env('BK_EMAIL'), env('BK_PASSWORD'));
  assert.equal(url.origin + url.pathname, redirectURI, `redirected to ${url}`);
  tokens = await client.authorizationCodeGrant(spa, url, {
    pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true,
  });
  idClaims = tokens.claims();
  assert.ok(idClaims.sub && idClaims.auth_time, 'sub and auth_time');
  assert.ok(tokens.refresh_token, 'refresh token issued for offline_access');
  const [h] = tokens.access_token.split('.');
  assert.equal(JSON.parse(Buffer.from(h, 'base64url')).typ, 'at+jwt');
});

await check('userinfo', async () => {
  const info = await client.fetchUserInfo(spa, tokens.access_token, idClaims.sub);
  assert.equal(info.email, env('BK_EMAIL'));
});

await check('refresh rotates the refresh token', async () => {
  rotated = await client.refreshTokenGrant(spa, tokens.refresh_token);
  assert.ok(rotated.access_token && rotated.refresh_token);
  assert.notEqual(rotated.refresh_token, tokens.refresh_token);
});

await check('reusing a rotated refresh token within the reuse grace fails and revokes nothing', async () => {
  await expectOAuthError(client.refreshTokenGrant(spa, tokens.refresh_token), 'invalid_grant');
  rotated = await client.refreshTokenGrant(spa, rotated.refresh_token);
  assert.ok(rotated.access_token && rotated.refresh_token, 'the winner\'s new refresh token still works');
});

await check('reusing a rotated refresh token after the reuse grace fails and revokes the family', async () => {
  await new Promise((resolve) => setTimeout(resolve, Number(env('BK_REUSE_GRACE_MS')) + 200));
  await expectOAuthError(client.refreshTokenGrant(spa, tokens.refresh_token), 'invalid_grant');
  await expectOAuthError(client.refreshTokenGrant(spa, rotated.refresh_token), 'invalid_grant');
});

let second;
await check('prompt=none with a session issues a code without the login page', async () => {
  const req = await authorizationRequest(spa, { prompt: 'none' });
  const { url } = await browser.follow(req.url);
  assert.equal(url.origin + url.pathname, redirectURI, `redirected to ${url}`);
  second = await client.authorizationCodeGrant(spa, url, {
    pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true,
  });
});

await check('introspection needs client authentication and reports active tokens meant for the caller', async () => {
  const info = await client.tokenIntrospection(backend, second.access_token);
  assert.equal(info.active, true);
  assert.equal(info.sub, idClaims.sub);
  // The backend's own client_credentials token is its own; the SPA's
  // refresh token is neither its own nor meant for it.
  const cc = await client.clientCredentialsGrant(backend, {});
  assert.equal((await client.tokenIntrospection(backend, cc.access_token)).active, true);
  assert.equal((await client.tokenIntrospection(backend, second.refresh_token)).active, false);
  const anon = await fetch(backend.serverMetadata().introspection_endpoint, {
    method: 'POST', body: new URLSearchParams({ token: second.access_token }),
    headers: { authorization: `Bearer ${second.access_token}` },
  });
  assert.equal(anon.status, 401, 'a bearer token alone is refused');
});

await check('revocation of the refresh token deactivates the grant', async () => {
  await client.tokenRevocation(spa, second.refresh_token);
  await expectOAuthError(client.refreshTokenGrant(spa, second.refresh_token), 'invalid_grant');
  const info = await client.tokenIntrospection(backend, second.access_token);
  assert.equal(info.active, false);
});

await check('client_credentials for the confidential client', async () => {
  const cc = await client.clientCredentialsGrant(backend, {});
  assert.ok(cc.access_token);
  assert.equal(cc.refresh_token, undefined);
});

await check('RP-initiated logout ends the session', async () => {
  const state = client.randomState();
  const end = client.buildEndSessionUrl(spa, {
    id_token_hint: tokens.id_token, post_logout_redirect_uri: postLogoutURI, state,
  });
  const { url } = await browser.follow(end);
  assert.equal(url.origin + url.pathname, new URL(postLogoutURI).origin + new URL(postLogoutURI).pathname);
  assert.equal(url.searchParams.get('state'), state);
});

await check('prompt=none without a session answers login_required', async () => {
  const req = await authorizationRequest(spa, { prompt: 'none' });
  const { url } = await browser.follow(req.url);
  assert.equal(url.origin + url.pathname, redirectURI);
  assert.equal(url.searchParams.get('error'), 'login_required');
  assert.equal(url.searchParams.get('state'), req.state);
});

done();
