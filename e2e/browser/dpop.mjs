// The browser client (wasm/testapp on the built package) in headless
// Chromium against a real broker that requires DPoP for the client: what an
// XSS in the page can and cannot do with the tokens it finds.
// Environment: BK_ISSUER, BK_APP (host:port to serve the test app on; the
// broker's client test-spa has the redirect URI http://BK_APP/testapp/callback),
// BK_EMAIL, BK_PASSWORD, BK_SHOTS (dir), BK_NONCE=1 when the broker runs
// with dpop.nonce, BK_REQUIRED=1 when test-spa is registered with
// --require-dpop.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import {
  launchChromium,
  pkg,
  proofFromOwnKey,
  signWithStoredKey,
  stealRefreshToken,
  storedDPoPKey,
} from '../../wasm/scripts/browser-harness.mjs';
import { checks } from './checks.mjs';

const issuer = process.env.BK_ISSUER;
const [host, port] = process.env.BK_APP.split(':');
const app = `http://${host}:${port}`;
const shots = process.env.BK_SHOTS ?? tmpdir();
const nonces = process.env.BK_NONCE === '1';
const required = process.env.BK_REQUIRED === '1';

// The test app and the package's dist/, as the test issuer's app server
// serves them (wasm/internal/cmd/testissuer).
const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const server = createServer((req, res) => {
  let path = new URL(req.url, app).pathname;
  if (path === '/testapp/' || path === '/testapp/callback') path = '/testapp/index.html';
  const file = normalize(join(pkg, path));
  try {
    if (!file.startsWith(pkg) || !statSync(file).isFile()) throw new Error('not found');
    res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
    res.end(readFileSync(file));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(Number(port), host, resolve));

const ctx = await launchChromium(mkdtempSync(join(tmpdir(), 'bk-dpop-')), { issuer });
const page = ctx.pages()[0] ?? (await ctx.newPage());
const { check, done } = checks(async () => {
  console.log(`at ${page.url()}: ${await page.locator('body').innerText().catch(() => '')}`);
  await page.screenshot({ path: join(shots, 'dpop-failure.png') }).catch(() => {});
  await ctx.close();
  server.close();
});
const discovery = await (await fetch(issuer + '/.well-known/openid-configuration')).json();
const state = () => page.evaluate(() => window.bk.getState());
const token = (minValiditySeconds) =>
  page.evaluate((m) => window.bk.getAccessToken({ minValiditySeconds: m }), minValiditySeconds);
/** A refresh_token grant from this Node process (the attacker's server). */
async function redeem(refreshToken, headers = {}) {
  const r = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'test-spa' }),
  });
  return { status: r.status, body: await r.json(), nonce: r.headers.get('DPoP-Nonce') };
}
/** userinfo from this Node process with a copied access token. */
async function userinfo(authorization, proof) {
  const headers = { Authorization: authorization };
  if (proof) headers.DPoP = proof;
  const r = await fetch(discovery.userinfo_endpoint, { headers });
  return { status: r.status, auth: r.headers.get('WWW-Authenticate') ?? '' };
}
async function login() {
  await page.click('#login');
  await page.waitForURL(/\/login\?/, { timeout: 20000 });
  await page.fill('input[name=email]', process.env.BK_EMAIL);
  await page.fill('input[name=password]', process.env.BK_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.href.startsWith(app + '/testapp/'), { timeout: 20000 });
  await page.waitForFunction(() => document.getElementById('status').textContent === 'authenticated', null, { timeout: 20000 });
}

await check('discovery advertises DPoP and the login gives DPoP-bound tokens', async () => {
  assert.ok(discovery.dpop_signing_alg_values_supported?.includes('ES256'), JSON.stringify(discovery));
  await page.goto(app + '/testapp/');
  await page.waitForFunction(() => window.readyMs !== undefined);
  await login();
  assert.equal((await state()).tokenType, 'DPoP');
});

await check('a refresh token copied out of IndexedDB by page script is refused from a Node process; the page still refreshes with it', async () => {
  const stolen = await stealRefreshToken(page);
  // Without a proof (invalid_grant: the token is bound to a key; a client
  // that requires DPoP refuses the request itself), and with a proof from
  // the thief's own key (invalid_grant: the token is bound to the browser's).
  const bare = await redeem(stolen);
  assert.equal(bare.status, 400, JSON.stringify(bare.body));
  assert.equal(bare.body.error, required ? 'invalid_dpop_proof' : 'invalid_grant');
  let own = await redeem(stolen, { DPoP: await proofFromOwnKey('POST', discovery.token_endpoint) });
  if (nonces && own.body.error === 'use_dpop_nonce') {
    // The thief can learn the nonce too: it changes nothing.
    own = await redeem(stolen, { DPoP: await proofFromOwnKey('POST', discovery.token_endpoint, { nonce: own.nonce }) });
  }
  assert.equal(own.status, 400, JSON.stringify(own.body));
  assert.equal(own.body.error, 'invalid_grant');
  const before = await token();
  const after = await token(3600); // forces the refresh_token grant, from the worker
  assert.notEqual(after, before);
  assert.equal((await state()).status, 'authenticated');
});

await check('an access token copied out is refused by /userinfo without a proof from the key', async () => {
  const at = await token();
  assert.equal((await userinfo('Bearer ' + at)).status, 401, 'as a Bearer token');
  assert.equal((await userinfo('DPoP ' + at)).status, 401, 'as DPoP without a proof');
  const postProof = await page.evaluate((u) => window.bk.createDPoPProof('POST', u), discovery.userinfo_endpoint);
  assert.equal((await userinfo('DPoP ' + at, postProof)).status, 401, 'a proof for another method');
  const otherProof = await page.evaluate((u) => window.bk.createDPoPProof('GET', u), issuer + '/elsewhere');
  assert.equal((await userinfo('DPoP ' + at, otherProof)).status, 401, 'a proof for another URL');
  // With a fresh proof from the page, the copied token works, once.
  const proof = await page.evaluate((u) => window.bk.createDPoPProof('GET', u), discovery.userinfo_endpoint);
  assert.equal((await userinfo('DPoP ' + at, proof)).status, 200, 'with a proof the page made');
  const replay = await userinfo('DPoP ' + at, proof);
  assert.equal(replay.status, 401, 'the same proof again');
  // And the page's own calls go through.
  const st = await page.evaluate(async (u) => (await window.bk.fetchWithAuth(u)).status, discovery.userinfo_endpoint);
  assert.equal(st, 200);
  assert.equal((await page.evaluate(() => window.bk.getUserInfo())).email, process.env.BK_EMAIL);
});

await check('what an XSS can still do while the page is open: sign a proof with the stored key for its own server', async () => {
  const stolen = await stealRefreshToken(page);
  let proof = await signWithStoredKey(page, 'POST', discovery.token_endpoint);
  let r = await redeem(stolen, { DPoP: proof });
  if (nonces) {
    // A proof made without the server's nonce (in advance, say) is refused;
    // the server's next nonce, carried back to the page, gets one signed.
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error, 'use_dpop_nonce');
    assert.ok(r.nonce, 'DPoP-Nonce');
    proof = await signWithStoredKey(page, 'POST', discovery.token_endpoint, { nonce: r.nonce });
    r = await redeem(stolen, { DPoP: proof });
  }
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.token_type, 'DPoP');
});

await check('the DPoP key cannot be exported and is replaced at logout', async () => {
  const key = await storedDPoPKey(page);
  assert.equal(key.extractable, false);
  assert.deepEqual(key.exports, { jwk: 'InvalidAccessError', pkcs8: 'InvalidAccessError' });
  // Logout goes through the broker's end_session endpoint and back.
  // (the broker redirects at once: the page is back on the app, newly loaded).
  const back = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame(), timeout: 20000 });
  await page.click('#logout');
  await back;
  await page.waitForFunction(() => window.readyMs !== undefined && document.getElementById('status').textContent === 'login_required', null, { timeout: 20000 });
  const next = await storedDPoPKey(page);
  assert.ok(next && next.x !== key.x, 'a new key');
  assert.equal(next.extractable, false);
});

await ctx.close();
server.close();
done();
