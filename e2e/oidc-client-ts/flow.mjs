// Drives a running Bridgekeeper with oidc-client-ts (its `dpop` setting) in
// headless Chromium: login through the broker's form with the code bound to
// the library's key, a refresh, a userinfo call with a proof; and the same
// tokens copied out of the page are refused without the key.
//
// Environment: BK_ISSUER, BK_CLIENT (a public client whose redirect URI is
// http://BK_APP/callback and allowed origin http://BK_APP), BK_APP
// (host:port to serve the page on), BK_EMAIL, BK_PASSWORD, CHROMIUM_PATH.
// Prints one line per check; exits non-zero on the first failure.
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, proofFromOwnKey } from '../../wasm/scripts/browser-harness.mjs';
import { checks } from '../browser/checks.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const issuer = env('BK_ISSUER');
const clientId = env('BK_CLIENT');
const [host, port] = env('BK_APP').split(':');
const app = `http://${host}:${port}`;
const here = dirname(fileURLToPath(import.meta.url));

const files = {
  '/app.js': ['text/javascript', join(here, 'app.js')],
  '/oidc-client-ts.min.js': ['text/javascript', join(here, 'node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js')],
};
const server = createServer((req, res) => {
  const path = new URL(req.url, app).pathname;
  const [type, file] = files[path] ?? ['text/html', join(here, 'index.html')];
  res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(readFileSync(file));
});
await new Promise((resolve) => server.listen(Number(port), host, resolve));

const ctx = await launchChromium(mkdtempSync(join(tmpdir(), 'bk-oidc-client-ts-')), {});
const page = ctx.pages()[0] ?? (await ctx.newPage());
const { check, done } = checks(async () => {
  console.log(await page.content().catch(() => ''));
  await ctx.close();
  server.close();
});
const discovery = await (await fetch(issuer + '/.well-known/openid-configuration')).json();
const user = () => page.evaluate(async () => {
  const u = await window.mgr.getUser();
  return u && { access_token: u.access_token, refresh_token: u.refresh_token, token_type: u.token_type, email: u.profile.email };
});
/** A refresh_token grant sent from this Node process, as an attacker's server would. */
async function redeem(refreshToken, headers = {}) {
  const r = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }),
  });
  return { status: r.status, body: await r.json() };
}

let first;
await check('login through the broker form: DPoP-bound tokens', async () => {
  await page.goto(`${app}/?issuer=${encodeURIComponent(issuer)}&client=${encodeURIComponent(clientId)}`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'signed-out');
  // signinRedirect navigates away: do not wait for its promise in the page.
  await page.evaluate(() => {
    void window.mgr.signinRedirect();
  });
  await page.waitForURL(/\/login\?/, { timeout: 20000 });
  await page.fill('input[name=email]', env('BK_EMAIL'));
  await page.fill('input[name=password]', env('BK_PASSWORD'));
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'loading', null, { timeout: 20000 });
  assert.equal(await page.locator('#status').textContent(), 'signed-in');
  first = await user();
  assert.equal(first.token_type, 'DPoP');
  assert.equal(first.email, env('BK_EMAIL'));
  assert.ok(first.refresh_token, 'a refresh token');
});

await check('the refresh token copied out of the page is refused without the key', async () => {
  // Without a proof: the client requires DPoP.
  const bare = await redeem(first.refresh_token);
  assert.equal(bare.status, 400, JSON.stringify(bare.body));
  assert.equal(bare.body.error, 'invalid_dpop_proof');
  // With a proof from a key of the thief's own: not the key it is bound to.
  const own = await redeem(first.refresh_token, { DPoP: await proofFromOwnKey('POST', discovery.token_endpoint) });
  assert.equal(own.status, 400, JSON.stringify(own.body));
  assert.equal(own.body.error, 'invalid_grant');
});

await check('refresh in the page with the key: new DPoP-bound tokens', async () => {
  await page.evaluate(() => window.mgr.signinSilent());
  const next = await user();
  assert.equal(next.token_type, 'DPoP');
  assert.notEqual(next.access_token, first.access_token);
  assert.notEqual(next.refresh_token, first.refresh_token);
});

await check('userinfo with a proof from the library', async () => {
  const r = await page.evaluate((u) => window.callWithDPoP(u), discovery.userinfo_endpoint);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).email, env('BK_EMAIL'));
});

await check('the access token copied out is refused by /userinfo without a proof', async () => {
  const { access_token } = await user();
  for (const scheme of ['Bearer', 'DPoP']) {
    const r = await fetch(discovery.userinfo_endpoint, { headers: { Authorization: `${scheme} ${access_token}` } });
    assert.equal(r.status, 401, `${scheme}: ${r.status}`);
  }
});

await ctx.close();
server.close();
done();
