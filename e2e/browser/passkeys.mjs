// Passkeys in headless Chromium with its virtual authenticator (CDP
// WebAuthn domain): enrol on the account page after the password, sign
// out, sign in with the passkey alone; make new recovery codes with the
// passkey (a request whose allowCredentials list it alone); a second
// profile without the credential cannot use it; a clone of the credential
// with a lower sign counter is refused; after removal the passkey no
// longer signs in.
// Environment: BK_ISSUER (http://localhost:PORT), BK_EMAIL, BK_PASSWORD.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from '../../wasm/node_modules/playwright-core/index.mjs';

const issuer = process.env.BK_ISSUER;
const email = process.env.BK_EMAIL;
const password = process.env.BK_PASSWORD;
const contexts = [];

// profile opens a fresh browser profile with a virtual authenticator
// (CTAP2, resident keys, user verification that succeeds).
async function profile(name) {
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), `bk-passkey-${name}-`)), {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  contexts.push(ctx);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { ctx, page, cdp, authenticatorId };
}

let passed = 0;
let current;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
    if (current) console.log('page: ' + current.url() + '\n' + (await current.content().catch(() => '')).slice(0, 3000));
    for (const c of contexts) await c.close().catch(() => {});
    process.exit(1);
  }
}

// open loads url in page once the page has settled. On the sign-in page
// the autofill's conditional request and a click on "Sign in with a
// passkey" can both complete; the later one's form post navigates after
// the check that looked at the first answer, and would abort a goto made
// meanwhile (net::ERR_ABORTED). So wait for the network to go quiet, and
// if a late post still interrupts, load the page again.
async function open(page, url) {
  await page.waitForLoadState('networkidle').catch(() => {});
  try {
    await page.goto(url);
  } catch (err) {
    if (!String(err).includes('ERR_ABORTED')) throw err;
    await page.waitForLoadState('networkidle').catch(() => {});
    await page.goto(url);
  }
}

// toLogin opens the broker's sign-in from the account page.
async function toLogin(page) {
  await open(page, issuer + '/account');
  // Watch from before the click: the e-mail field's autofill (conditional
  // mediation) may answer with a passkey at once and take the page on
  // (to /login/passkey, or back to /account) before a later wait looks.
  const reached = page.waitForURL((u) => u.pathname.startsWith('/login'), { timeout: 20000, waitUntil: 'commit' });
  await page.getByRole('link', { name: /sign in/i }).first().click();
  await reached;
}

// passkeySignIn clicks "Sign in with a passkey" (unless the autofill's
// conditional request already signed in) and waits for the account page.
async function passkeySignIn(page) {
  await page.locator('#passkey-signin').click({ timeout: 5000 }).catch(() => {});
  await page.waitForURL((u) => u.pathname.endsWith('/account'), { timeout: 20000 });
  await page.getByText(email).first().waitFor({ timeout: 20000 });
}

async function signOut(page) {
  await open(page, issuer + '/oauth2/logout');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForLoadState();
  await open(page, issuer + '/account');
  await page.getByRole('link', { name: /sign in/i }).first().waitFor({ timeout: 20000 });
}

const a = await profile('a');
current = a.page;

await check('password sign-in, then add a passkey on the account page', async () => {
  await toLogin(a.page);
  await a.page.fill('input[name=email]', email);
  await a.page.fill('input[name=password]', password);
  await a.page.click('button[type=submit]');
  await a.page.waitForURL((u) => u.pathname.endsWith('/account'), { timeout: 20000 });
  await a.page.fill('#passkey_name', 'Laptop');
  await a.page.fill('#passkey_password', password);
  await a.page.getByRole('button', { name: 'Add a passkey' }).click();
  await a.page.locator('#passkey-create').click();
  await a.page.getByText('Passkey "Laptop" added').waitFor({ timeout: 20000 });
  // The first second factor comes with recovery codes, shown once.
  assert.equal(await a.page.locator('#recovery-codes li').count(), 10, 'ten recovery codes shown with the first passkey');
  await a.page.getByRole('link', { name: 'Back to your account' }).click();
  await a.page.locator('#passkey-list').getByText('never used').waitFor();
  const { credentials } = await a.cdp.send('WebAuthn.getCredentials', { authenticatorId: a.authenticatorId });
  assert.equal(credentials.length, 1, 'one credential on the authenticator');
  assert.ok(credentials[0].isResidentCredential, 'a discoverable credential');
});

await check('sign out, then sign in with the passkey alone', async () => {
  await signOut(a.page);
  // The e-mail field's autofill (conditional mediation) offers the
  // passkey; the virtual authenticator picks it at once, else the button.
  await toLogin(a.page);
  await passkeySignIn(a.page);
  await a.page.locator('#passkey-list').getByText('last used').waitFor({ timeout: 20000 });
});

await check('new recovery codes confirmed with the passkey, the request listing it alone', async () => {
  await open(a.page, issuer + '/account');
  await a.page.fill('#recovery_password', password);
  await a.page.getByRole('button', { name: 'Make new codes with a passkey' }).click();
  const opts = JSON.parse(await a.page.getAttribute('#passkey-reauth', 'data-options'));
  const { credentials } = await a.cdp.send('WebAuthn.getCredentials', { authenticatorId: a.authenticatorId });
  const own = credentials.map((c) => Buffer.from(c.credentialId, 'base64').toString('base64url'));
  assert.deepEqual((opts.publicKey.allowCredentials ?? []).map((c) => c.id), own, 'allowCredentials: the passkey of this account');
  await a.page.locator('#passkey-confirm').click();
  await a.page.getByRole('heading', { name: 'Your new recovery codes' }).waitFor({ timeout: 20000 });
  assert.equal(await a.page.locator('#recovery-codes li').count(), 10, 'ten new recovery codes');
});

const b = await profile('b');
current = b.page;
await check('a second profile without the credential cannot sign in with it', async () => {
  await toLogin(b.page);
  assert.equal(await b.page.getAttribute('#email', 'autocomplete'), 'email webauthn');
  await b.page.locator('#passkey-signin').click();
  await b.page.locator('[data-passkey-status]').waitFor({ state: 'visible', timeout: 15000 }).catch(() => {});
  assert.match(new URL(b.page.url()).pathname, /\/login$/, 'still on the login page');
  await open(b.page, issuer + '/account');
  await b.page.getByRole('link', { name: /sign in/i }).first().waitFor({ timeout: 20000 });
});

const c = await profile('c');
current = c.page;
await check('a clone of the credential with a lower sign counter is refused', async () => {
  const { credentials } = await a.cdp.send('WebAuthn.getCredentials', { authenticatorId: a.authenticatorId });
  const cred = credentials[0];
  assert.ok(cred.signCount >= 1, `the original has signed in (signCount ${cred.signCount})`);
  await c.cdp.send('WebAuthn.addCredential', { authenticatorId: c.authenticatorId, credential: { ...cred, signCount: 0 } });
  await toLogin(c.page);
  await c.page.locator('#passkey-signin').click({ timeout: 5000 }).catch(() => {});
  // Refused; the page that says so does not start the autofill again.
  await c.page.getByText('The passkey could not be verified').waitFor({ timeout: 20000 });
  await open(c.page, issuer + '/account');
  await c.page.getByRole('link', { name: /sign in/i }).first().waitFor({ timeout: 20000 });
});

current = a.page;
await check('remove the passkey; it no longer signs in', async () => {
  await open(a.page, issuer + '/account');
  await a.page.fill('#passkey_remove_password', password);
  await a.page.getByRole('button', { name: 'Remove passkey' }).click();
  await a.page.getByText('Passkey removed').waitFor({ timeout: 20000 });
  await a.page.locator('#passkey-none').waitFor();
  await signOut(a.page);
  await toLogin(a.page);
  await a.page.locator('#passkey-signin').click({ timeout: 5000 }).catch(() => {});
  await a.page.getByText('not registered for any account').waitFor({ timeout: 20000 });
  await open(a.page, issuer + '/account');
  await a.page.getByRole('link', { name: /sign in/i }).first().waitFor({ timeout: 20000 });
});

for (const ctx of contexts) await ctx.close();
console.log(`${passed} passed, 0 failed`);
