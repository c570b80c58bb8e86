// What the openid-client drives (flow.mjs, dpop.mjs) share: the checks'
// reporting, the environment, and the login side — a minimal browser with
// a cookie jar and manual redirects, and the broker's login form.
import assert from 'node:assert/strict';

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

let passed = 0;

// check runs one named check: one line per check, exit non-zero on the
// first failure.
export async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
    process.exit(1);
  }
}

// done prints the summary the Go tests look for.
export function done() {
  console.log(`${passed} passed, 0 failed`);
}

export async function expectOAuthError(promise, code) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.error ?? err.cause?.error, code, `error ${err.error} (${err.message})`);
    return;
  }
  assert.fail(`expected ${code}`);
}

// A minimal browser: a cookie jar and manual redirects.
export class Browser {
  // origin is the broker's: redirects leaving it are the app's callback.
  constructor(origin) { this.origin = origin; this.cookies = new Map(); }
  cookieHeader() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  store(res) {
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim(), value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /max-age=(0|-)/i.test(a.trim())) || value === '';
      if (expired) this.cookies.delete(name); else this.cookies.set(name, value);
    }
  }
  async request(url, init = {}) {
    const headers = { ...(init.headers ?? {}), cookie: this.cookieHeader() };
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(res);
    return res;
  }
  // Follows redirects until one leaves the issuer (the app's callback) or a
  // page is shown. Returns {url, res} of the final step.
  async follow(url, init) {
    let res = await this.request(url, init);
    for (let i = 0; i < 10 && res.status >= 300 && res.status < 400; i++) {
      const next = new URL(res.headers.get('location'), url);
      if (next.origin !== this.origin) return { url: next, res };
      url = next;
      res = await this.request(url);
    }
    return { url: new URL(url), res };
  }
}

export async function loginThroughForm(browser, authURL, email, password) {
  const { url, res } = await browser.follow(authURL);
  assert.equal(res.status, 200, `login page status ${res.status}`);
  const html = await res.text();
  const form = html.match(/<form[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i);
  assert.ok(form, 'login page has a POST form');
  const action = (form[0].match(/action="([^"]*)"/i) ?? [])[1] ?? url.pathname + url.search;
  const body = new URLSearchParams();
  for (const m of form[1].matchAll(/<input[^>]*>/gi)) {
    const tag = m[0];
    const name = (tag.match(/name="([^"]*)"/i) ?? [])[1];
    const type = ((tag.match(/type="([^"]*)"/i) ?? [])[1] ?? 'text').toLowerCase();
    if (name && type === 'hidden') body.set(name, decode((tag.match(/value="([^"]*)"/i) ?? [])[1] ?? ''));
  }
  assert.ok(/name="email"/.test(form[1]) && /name="password"/.test(form[1]), 'form has email and password inputs');
  body.set('email', email);
  body.set('password', password);
  const target = new URL(decode(action), url);
  return browser.follow(target, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: browser.origin },
  });
}

const decode = (s) => s.replace(/&amp;/g, '&').replace(/&#43;/g, '+').replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
