// Drives the React demo (wasm/example) in headless Chromium against a real
// broker and the example API: log in through the broker's form, the profile
// page shows what the API saw, a reload keeps the session, logout ends it.
// Environment: BK_APP (the demo's URL), BK_EMAIL, BK_PASSWORD, BK_SHOTS (dir).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from '../../wasm/node_modules/playwright-core/index.mjs';

const app = process.env.BK_APP;
const shots = process.env.BK_SHOTS ?? tmpdir();
const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'bk-demo-')), {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let passed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
    await page.screenshot({ path: join(shots, 'failure.png') }).catch(() => {});
    await ctx.close();
    process.exit(1);
  }
}
const page = ctx.pages()[0] ?? (await ctx.newPage());
const visits = [];
page.on('framenavigated', (f) => { if (f === page.mainFrame()) visits.push(f.url()); });

await check('home offers the local login and the connectors', async () => {
  await page.goto(app + '/');
  await page.getByRole('button', { name: 'Continue with Okta' }).waitFor({ timeout: 20000 });
});

await check('log in through the broker form and come back logged in', async () => {
  await page.getByRole('main').getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/login\?/, { timeout: 20000 });
  await page.fill('input[name=email]', process.env.BK_EMAIL);
  await page.fill('input[name=password]', process.env.BK_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.href.startsWith(app), { timeout: 20000 });
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 20000 });
});

await check('the profile page shows the user and what the API saw', async () => {
  await page.getByRole('link', { name: 'Profile' }).first().click();
  await page.getByText('As the API sees you').waitFor({ timeout: 20000 });
  // The API's answer: the scopes of the access token it verified.
  await page.locator('main').getByText(/offline_access checkout/).first().waitFor({ timeout: 20000 });
  const body = await page.locator('main').innerText();
  assert.ok(body.includes(process.env.BK_EMAIL), 'the e-mail is shown');
  await page.screenshot({ path: join(shots, 'profile.png') });
});

await check('a reload keeps the session without visiting the login page', async () => {
  const before = visits.length;
  await page.reload();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 20000 });
  assert.ok(!visits.slice(before).some((u) => u.includes('/login')), `visited ${visits.slice(before)}`);
});

await check('logout ends the session', async () => {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL((u) => u.href.startsWith(app), { timeout: 20000 });
  await page.getByRole('main').getByRole('button', { name: 'Log in' }).waitFor({ timeout: 20000 });
});

await check('"Continue with Okta" logs in through the connector plugin', async () => {
  await page.getByRole('button', { name: 'Continue with Okta' }).click();
  await page.getByRole('button', { name: new RegExp(process.env.BK_UPSTREAM_USER) }).click({ timeout: 20000 });
  await page.waitForURL((u) => u.href.startsWith(app), { timeout: 20000 });
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 20000 });
  await page.getByRole('link', { name: 'Profile' }).first().click();
  await page.locator('main').getByText(process.env.BK_UPSTREAM_EMAIL).first().waitFor({ timeout: 20000 });
  await page.screenshot({ path: join(shots, 'okta-profile.png') });
});

// The broker's Prometheus counter of successful refresh grants (metrics
// are served on their own listener, BK_METRICS, not on the issuer's).
async function refreshGrants() {
  const text = await (await fetch(process.env.BK_METRICS + '/metrics')).text();
  const m = text.match(/^bridgekeeper_token_grants_total\{grant_type="refresh_token",outcome="ok"\} (\d+)/m);
  return m ? Number(m[1]) : 0;
}

await check('checkout insists on a fresh access token (one refresh grant, counted at the broker)', async () => {
  await page.getByRole('link', { name: 'Checkout' }).first().click();
  const before = await refreshGrants();
  await page.getByRole('button', { name: 'Pay now' }).click({ timeout: 20000 });
  await page.getByText('Checkout done').waitFor({ timeout: 20000 });
  assert.equal(await refreshGrants(), before + 1, 'refresh grants at the broker');
  await page.screenshot({ path: join(shots, 'checkout.png') });
});

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 key, `steps` steps from now.
function totp(secret, steps) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '')) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + steps));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
}

await check('step-up: an authenticator set up on the broker account page, then checkout confirms with its code', async () => {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL((u) => u.href.startsWith(app), { timeout: 20000 });
  await page.getByRole('main').getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/login\?/, { timeout: 20000 });
  await page.fill('input[name=email]', process.env.BK_EMAIL);
  await page.fill('input[name=password]', process.env.BK_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.href.startsWith(app), { timeout: 20000 });
  await page.getByTestId('amr').first().filter({ hasText: 'pwd' }).waitFor({ timeout: 20000 });
  // The demo links to the broker's account page.
  await page.getByRole('link', { name: 'Profile' }).first().click();
  await page.getByRole('link', { name: 'Manage your account' }).click();
  await page.waitForURL(/\/account/, { timeout: 20000 });
  await page.fill('#mfa_password', process.env.BK_PASSWORD);
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  const secret = (await page.locator('#totp-secret').innerText({ timeout: 20000 })).trim();
  const qrShown = await page.locator('img[alt^="QR code"]').evaluate((img) => img.complete && img.naturalWidth > 0);
  assert.ok(qrShown, 'the QR code (a data: URL) renders under the page CSP');
  await page.fill('#code', totp(secret, 0));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.locator('#recovery-codes li').first().waitFor({ timeout: 20000 });
  assert.equal(await page.locator('#recovery-codes li').count(), 10);
  await page.screenshot({ path: join(shots, 'recovery-codes.png') });
  // The session signed in with the password only: checkout offers the step-up.
  await page.goto(app + '/checkout');
  await page.getByRole('button', { name: 'Confirm with your authenticator app' }).click({ timeout: 20000 });
  await page.waitForURL(/\/login\/mfa/, { timeout: 20000 });
  await page.fill('#code', totp(secret, 1));
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.href.startsWith(app), { timeout: 20000 });
  await page.getByText('Confirmed with a second factor (pwd, otp, mfa)').waitFor({ timeout: 20000 });
  await page.screenshot({ path: join(shots, 'checkout-mfa.png') });
});

await ctx.close();
console.log(`${passed} passed, 0 failed`);
