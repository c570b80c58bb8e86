// Browser tests of the npm package: headless Debian Chromium driven by
// playwright-core, against the oidctest issuer (wasm/internal/cmd/testissuer).
// Run from wasm/ after `npm run build`: node --test test/
// Skips when chromium (CHROMIUM_PATH, default /usr/bin/chromium) is missing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildTestIssuer,
  chromiumPath,
  launchChromium,
  pkg,
  startTestIssuer,
  signWithStoredKey,
  stealRefreshToken,
  storedDPoPKey,
  submitLogin,
} from "../scripts/browser-harness.mjs";

const artifacts = join(pkg, "test-results");
const skip = !existsSync(chromiumPath)
  ? `chromium not found at ${chromiumPath} (apt-get install -y chromium)`
  : !existsSync(join(pkg, "dist", "bridgekeeper.wasm"))
    ? "the package is not built (npm run build)"
    : false;

let issuerBin;
const tmp = mkdtempSync(join(tmpdir(), "bk-browser-"));

before(async () => {
  if (skip) return;
  issuerBin = buildTestIssuer(tmp);
  mkdirSync(artifacts, { recursive: true });
});

after(() => rmSync(tmp, { recursive: true, force: true }));

/** Starts a fresh issuer + app server; resolves to {issuer, app, stop}. */
async function startIssuer(args = []) {
  const { env, proc } = await startTestIssuer(issuerBin, args);
  env.stop = () => proc.stdin.end();
  env.post = async (path) => {
    const r = await fetch(env.issuer + path, { method: "POST" });
    assert.ok(r.ok, `${path}: HTTP ${r.status}`);
  };
  env.stats = async () => (await fetch(env.issuer + "/test/stats")).json();
  return env;
}

let dirCount = 0;
/** A fresh browser with its own profile; resolves to a Playwright context. */
async function browser(env, modes = {}) {
  return launchChromium(join(tmp, "profile-" + dirCount++), { issuer: env.issuer, ...modes });
}

/** Opens the test app in a new tab and waits until the client is ready. */
async function openApp(ctx, env) {
  const page = await ctx.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e));
  await page.goto(env.app + "/testapp/");
  await page.waitForFunction(() => window.readyMs !== undefined);
  return page;
}

async function status(page) {
  return page.locator("#status").textContent();
}

/** Logs in through the issuer's form and waits for the app to be back. */
async function login(page, env) {
  await submitLogin(page, env);
  await page.waitForFunction(() => window.readyMs !== undefined);
  await page.waitForFunction(() => window.bk.getState().status !== "loading");
  // The page is never told "authenticated" while on the callback URL.
  const at = await page.evaluate(() => window.authenticatedAt);
  assert.ok(at.every((u) => !u.includes("code=")), "the logged-in state was shown on the callback URL: " + at);
}

/** Logs out and waits for the test app to be loaded again (logout visits the issuer and comes back). */
async function logout(page, env) {
  const back = page.waitForEvent("framenavigated", { predicate: (f) => f === page.mainFrame() && f.url().startsWith(env.app) });
  await page.click("#logout");
  await back;
  await page.waitForFunction(() => window.readyMs !== undefined);
}

/** The snapshots in the page's localStorage and sessionStorage: [[area, key, value]]. */
const snapshots = (page) =>
  page.evaluate(() =>
    [
      ["local", localStorage],
      ["session", sessionStorage],
    ].flatMap(([area, st]) =>
      Object.keys(st)
        .filter((k) => k.startsWith("bridgekeeper:snapshot:"))
        .map((k) => [area, k, st.getItem(k)]),
    ),
  );

/** The state the page had right after createClient, before any message from the worker. */
const initial = (page) => page.evaluate(() => window.initialState);

const waitConfirmed = (page) => page.waitForFunction(() => window.confirmedMs !== undefined);

const token = (page, minValiditySeconds) =>
  page.evaluate((m) => window.bk.getAccessToken({ minValiditySeconds: m }).catch((e) => "error:" + e.code), minValiditySeconds);

/** A refresh_token grant sent from this Node process (the attacker's server). */
async function redeem(env, refreshToken, headers = {}) {
  const r = await fetch(env.issuer + "/oauth2/token", {
    method: "POST",
    headers,
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "test-spa" }),
  });
  return { status: r.status, body: await r.json() };
}

describe("browser client", { skip, timeout: 600_000 }, () => {
  test("login, reload keeps the session, fetchWithAuth renews a refused token", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      assert.equal(await status(page), "login_required");
      await login(page, env);
      assert.equal(await status(page), "authenticated");
      assert.equal(await page.locator("#email").textContent(), "ada@example.com");
      assert.ok(!page.url().includes("code="), "the callback parameters are removed from the URL: " + page.url());
      // Routers that keep their own copy of the location hear of it.
      assert.deepEqual(await page.evaluate(() => window.popstates), ["/testapp/"]);

      await page.screenshot({ path: join(artifacts, "logged-in.png") });

      // Reload: still logged in, and the browser never visits the broker's login.
      const visited = [];
      page.on("request", (r) => visited.push(r.url()));
      await page.reload();
      await page.waitForFunction(() => window.readyMs !== undefined);
      assert.equal(await status(page), "authenticated");
      assert.ok(!visited.some((u) => u.includes("/oauth2/auth")), "visited the login page on reload");
      assert.equal((await env.stats()).logins, 1);

      // The API accepts the token.
      const info = await page.evaluate(async (issuer) => {
        const r = await window.bk.fetchWithAuth(issuer + "/userinfo");
        return { status: r.status, body: await r.json() };
      }, env.issuer);
      assert.equal(info.status, 200);
      assert.equal(info.body.email, "ada@example.com");

      // The API refuses a revoked access token: one refresh, one retry.
      const again = await page.evaluate(async (issuer) => {
        const at = await window.bk.getAccessToken();
        await fetch(issuer + "/oauth2/revoke", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: "client_id=test-spa&token=" + encodeURIComponent(at),
        });
        const r = await window.bk.fetchWithAuth(issuer + "/userinfo");
        return r.status;
      }, env.issuer);
      assert.equal(again, 200);
      assert.equal((await env.stats()).refresh_grants, 1);
      assert.deepEqual(page.errors, []);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  for (const worker of ["shared", "dedicated"]) {
    test(`two tabs (${worker} worker) refresh once and log out together`, async () => {
      const env = await startIssuer();
      const ctx = await browser(env, { worker });
      try {
        const tab1 = await openApp(ctx, env);
        await login(tab1, env);
        const tab2 = await openApp(ctx, env);
        assert.equal(await status(tab2), "authenticated");

        // Give the session a 1 s access token, then let it expire: both
        // tabs (and their refresh timers) need a new one at once.
        await env.post("/test/ttl?ttl=1s");
        assert.ok(!(await token(tab1, 3600)).startsWith("error:"));
        await env.post("/test/ttl?ttl=5m");
        const before = (await env.stats()).refresh_grants;
        const expiry = await tab1.evaluate(() => window.bk.getState().expiresAt);
        await tab1.waitForFunction((t) => Date.now() > t, expiry);
        const [a, b] = await Promise.all([token(tab1), token(tab2)]);
        assert.ok(!a.startsWith("error:"), a);
        assert.equal(a, b, "both tabs got the same new token");
        const st = await env.stats();
        assert.equal(st.refresh_grants - before, 1, "exactly one refresh grant at the broker");
        assert.equal(st.refresh_rejected, 0);

        // Log out in tab 1: tab 2 follows.
        await tab1.click("#logout");
        await tab1.waitForURL((u) => u.href.startsWith(env.app + "/testapp/"));
        await tab2.waitForFunction(() => document.getElementById("status").textContent === "login_required");
        assert.ok((await tab2.locator("#events").textContent()).includes("loggedOut"));
        assert.ok((await env.stats()).revocations >= 1);
        assert.equal(await token(tab2), "error:login_required");

        // Back from the broker's logout, and reloaded: never "authenticated",
        // not even before the worker answers.
        await tab1.waitForFunction(() => window.readyMs !== undefined);
        await tab2.reload();
        await tab2.waitForFunction(() => window.readyMs !== undefined);
        for (const tab of [tab1, tab2]) {
          await waitConfirmed(tab);
          assert.equal((await initial(tab)).status, "login_required");
          const seen = await tab.evaluate(() => window.states.map((s) => s.status));
          assert.ok(!seen.includes("authenticated"), "a state after logout: " + seen.join(" "));
        }
      } finally {
        await ctx.close();
        env.stop();
      }
    });
  }

  // "Signed out everywhere" at the broker (a password reset): the refresh
  // token is revoked; an API that checks the access token (introspection,
  // or here the issuer's userinfo) refuses it at once. fetchWithAuth's
  // refresh then fails, and the session ends there and then.
  test("a 401 from fetchWithAuth whose refresh fails ends the session with sessionExpired at once", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      const res = await page.evaluate(async (issuer) => {
        const at = await window.bk.getAccessToken();
        await fetch(issuer + "/test/revoke-all", { method: "POST" });
        await fetch(issuer + "/oauth2/revoke", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: "client_id=test-spa&token=" + encodeURIComponent(at),
        });
        const r = await window.bk.fetchWithAuth(issuer + "/userinfo");
        // Right after the call: no waiting for a timer or the next refresh.
        return { status: r.status, state: window.bk.getState().status };
      }, env.issuer);
      assert.equal(res.status, 401);
      assert.equal(res.state, "login_required");
      assert.ok((await page.locator("#events").textContent()).includes("sessionExpired"));
      assert.equal(await page.locator("#error").textContent(), "", "the end of the session is not an error");
      assert.equal(await token(page), "error:login_required");
      assert.deepEqual(page.errors, []);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  // A worker or .wasm that cannot load (a 404, a dev server refusing a
  // file outside its server.fs.allow, bytes that are not WebAssembly, a
  // script that never answers) is the error worker_failed within a bounded
  // time, never "loading" for ever; every call fails with it.
  for (const [what, modes, says] of [
    ["a SharedWorker script that 404s", { worker: "shared", workerUrl: "/dist/missing-worker.js" }, "missing-worker.js"],
    ["a Worker script that 404s", { worker: "dedicated", workerUrl: "/dist/missing-worker.js" }, "missing-worker.js"],
    ["a .wasm that 404s", { wasmUrl: "/dist/missing.wasm" }, "HTTP 404"],
    ["a .wasm that is not WebAssembly", { wasmUrl: "/testapp/index.html" }, "not a WebAssembly module"],
    ["a worker that never answers", { workerUrl: "/testapp/idle-worker.js", startTimeoutSeconds: 2 }, "no answer within 2 s"],
    ["a worker script on another origin", { workerUrl: "issuer:/worker.js" }, "could not be created"],
  ]) {
    test(`${what} is the error worker_failed`, async () => {
      const env = await startIssuer();
      const workerUrl = modes.workerUrl?.startsWith("issuer:")
        ? env.issuer + modes.workerUrl.slice("issuer:".length)
        : modes.workerUrl && env.app + modes.workerUrl;
      const ctx = await browser(env, { ...modes, ...(workerUrl ? { workerUrl } : {}) });
      try {
        const page = await ctx.newPage();
        page.errors = [];
        page.on("pageerror", (e) => page.errors.push(e));
        const t0 = Date.now();
        await page.goto(env.app + "/testapp/");
        await page.waitForFunction(() => window.confirmedMs !== undefined, null, { timeout: 10_000 });
        assert.ok(Date.now() - t0 < 10_000);
        assert.equal(await status(page), "login_required");
        assert.equal(await page.locator("#error").textContent(), "worker_failed");
        assert.ok((await page.locator("#events").textContent()).includes("error"));
        const msg = await page.evaluate(() => window.bk.getState().error.message);
        assert.ok(msg.includes(says), msg);
        // Calls fail at once with the same error instead of waiting for ever.
        assert.equal(await token(page), "error:worker_failed");
        const login = await page.evaluate(() => window.bk.login().then(() => "ok", (e) => "error:" + e.code));
        assert.equal(login, "error:worker_failed");
        assert.deepEqual(page.errors, []);
      } finally {
        await ctx.close();
        env.stop();
      }
    });
  }

  // The start-up timeout bounds the worker's own start, not the broker's
  // answers that init waits for (here the login callback's code exchange).
  test("a slow broker at start-up is not worker_failed", async () => {
    const env = await startIssuer();
    const ctx = await browser(env, { startTimeoutSeconds: 1 });
    try {
      const page = await openApp(ctx, env);
      await env.post("/test/slow?delay=2500ms");
      await login(page, env);
      assert.equal(await status(page), "authenticated");
      assert.equal(await page.locator("#error").textContent(), "");
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("a revoked refresh token at start-up is the state login_required", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      await env.post("/test/ttl?ttl=1s");
      assert.ok(!(await token(page, 3600)).startsWith("error:")); // now holds a 1 s token
      const expiry = await page.evaluate(() => window.bk.getState().expiresAt);
      await env.post("/test/revoke-all");
      await page.waitForFunction((t) => Date.now() > t, expiry);
      await page.reload();
      await page.waitForFunction(() => document.getElementById("status").textContent === "login_required");
      assert.equal(await page.locator("#error").textContent(), "");
      assert.deepEqual(page.errors, []);
      await page.screenshot({ path: join(artifacts, "session-expired.png") });
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("a reload is ready from the snapshot before the worker answers, then the worker agrees", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      await page.reload();
      await page.waitForFunction(() => window.readyMs !== undefined);
      const first = await initial(page);
      assert.equal(first.status, "authenticated");
      assert.equal(first.isLoading, false);
      assert.equal(first.confirmed, false, "the state came from the snapshot, not from the worker");
      assert.equal(first.user.email, "ada@example.com");

      await waitConfirmed(page);
      const states = await page.evaluate(() => window.states);
      assert.deepEqual(states.map((s) => s.status), states.map(() => "authenticated"), "the worker agreed");
      assert.equal(states.at(-1).confirmed, true);
      assert.equal(states.at(-1).user.sub, first.user.sub);
      assert.equal(await status(page), "authenticated");

      // The snapshot holds no token and nothing else secret.
      const at = await token(page);
      const snaps = await snapshots(page);
      assert.equal(snaps.length, 1);
      const [area, key, raw] = snaps[0];
      assert.equal(area, "local");
      assert.equal(key, `bridgekeeper:snapshot:${env.issuer}|test-spa`);
      assert.ok(!raw.includes(at), "the snapshot holds the access token");
      assert.ok(!/token|key/i.test(raw.replace(/"at_hash":"[^"]*"/, "")), raw);
      const snap = JSON.parse(raw);
      assert.deepEqual(Object.keys(snap).sort(), [
        "at", "authTime", "clientId", "expiresAt", "issuer", "scope", "status", "user", "v", "validUntil",
      ]);
      assert.equal(snap.status, "authenticated");
      assert.ok(snap.validUntil > Date.now());
      assert.deepEqual(page.errors, []);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("a stale authenticated snapshot after the refresh token was revoked ends in login_required with sessionExpired", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      let page = await openApp(ctx, env);
      await login(page, env);
      await env.post("/test/ttl?ttl=2s");
      assert.ok(!(await token(page, 3600)).startsWith("error:")); // now holds a 2 s token
      const expiry = await page.evaluate(() => window.bk.getState().expiresAt);
      // No tab is open when the broker revokes the session: nobody
      // updates the snapshot, which still says "authenticated".
      await page.close();
      await env.post("/test/revoke-all");
      while (Date.now() <= expiry + 100) await new Promise((r) => setTimeout(r, expiry + 100 - Date.now() + 1));

      page = await openApp(ctx, env);
      assert.equal((await initial(page)).status, "authenticated", "the stale snapshot");
      await page.waitForFunction(() => document.getElementById("status").textContent === "login_required");
      await waitConfirmed(page);
      assert.ok((await page.locator("#events").textContent()).includes("sessionExpired"));
      assert.equal(await page.locator("#error").textContent(), "");
      assert.equal(await token(page), "error:login_required");
      const [[, , raw]] = await snapshots(page);
      assert.equal(JSON.parse(raw).status, "unauthenticated");
      assert.deepEqual(page.errors, []);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("a corrupt, foreign, expired or forged snapshot is ignored or gains nothing", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      const key = `bridgekeeper:snapshot:${env.issuer}|test-spa`;
      const good = JSON.parse((await snapshots(page))[0][2]);
      const tampered = {
        "garbage JSON": "{not json",
        "another issuer": JSON.stringify({ ...good, issuer: "https://evil.example" }),
        "another client": JSON.stringify({ ...good, clientId: "other" }),
        "another version": JSON.stringify({ ...good, v: 99 }),
        "expired": JSON.stringify({ ...good, validUntil: Date.now() - 1000 }),
        "no user": JSON.stringify({ ...good, user: null }),
      };
      for (const [what, value] of Object.entries(tampered)) {
        await page.evaluate(([k, v]) => localStorage.setItem(k, v), [key, value]);
        await page.reload();
        await page.waitForFunction(() => window.readyMs !== undefined);
        assert.equal((await initial(page)).status, "loading", what + ": ready waited for the worker");
        assert.equal(await status(page), "authenticated", what);
        // The worker's view replaced it.
        assert.equal(JSON.parse((await snapshots(page))[0][2]).status, "authenticated", what);
      }

      // Script writing a fake "authenticated" snapshot for a logged-out
      // browser gets a page that says so until the worker answers, and no token.
      await page.evaluate(() => window.bk.logout({ redirect: false }));
      await page.evaluate(([k, v]) => localStorage.setItem(k, v), [key, JSON.stringify({ ...good, at: Date.now() })]);
      await page.reload();
      await page.waitForFunction(() => window.readyMs !== undefined);
      assert.equal((await initial(page)).status, "authenticated");
      assert.equal(await token(page), "error:login_required");
      assert.equal(await status(page), "login_required");
      assert.ok((await page.locator("#events").textContent()).includes("sessionExpired"));
      assert.deepEqual(page.errors, []);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("a tampered ID token is rejected", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await env.post("/test/tamper");
      await login(page, env);
      assert.equal(await status(page), "login_required");
      assert.equal(await page.locator("#error").textContent(), "invalid_id_token");
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  // What SECURITY.md and docs/react.md say of DPoP off (Bearer tokens): a
  // script running in the app's origin (an XSS) can open the package's
  // IndexedDB, use the non-extractable key to decrypt the stored session,
  // and redeem its refresh token anywhere.
  test("page script (XSS) can decrypt the stored refresh token: with DPoP off it works off the device", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      assert.equal(await page.evaluate(() => window.bk.getState().tokenType), "Bearer");
      const stolen = await stealRefreshToken(page);
      // Redeemed from outside the browser (the attacker's server).
      const r = await redeem(env, stolen);
      assert.equal(r.status, 200, "the stolen refresh token works off the device");
      assert.ok(r.body.access_token);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("the broker being down is an error, not a logout", async () => {
    const env = await startIssuer();
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      await env.post("/test/down");
      assert.equal(await token(page, 3600), "error:broker_unavailable");
      assert.equal(await page.locator("#error").textContent(), "broker_unavailable");
      assert.equal(await status(page), "authenticated");
      await page.screenshot({ path: join(artifacts, "broker-down.png") });
      await env.post("/test/down?down=false");
      assert.ok(!(await token(page, 3600)).startsWith("error:"));
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  for (const [storage, after, todo] of [
    ["memory", "login_required", false],
    ["session", "authenticated", false],
  ]) {
    test(`storage mode ${storage}: after a reload the state is ${after}`, { todo }, async () => {
      const env = await startIssuer();
      const ctx = await browser(env, { storage, worker: "dedicated" });
      try {
        const page = await openApp(ctx, env);
        await login(page, env);
        assert.equal(await status(page), "authenticated", await page.locator("#error").textContent());
        await page.reload();
        await page.waitForFunction(() => window.readyMs !== undefined);
        assert.equal(await status(page), after, storage);
        const snaps = await snapshots(page);
        if (storage === "session") {
          const stored = await page.evaluate(() => Object.values(sessionStorage).join(" "));
          assert.ok(stored.length > 0 && !stored.includes("access_token"), "sessionStorage holds ciphertext only");
          // The tab's own snapshot, in sessionStorage like its session.
          assert.deepEqual(snaps.map(([area]) => area), ["session"]);
          assert.equal((await initial(page)).status, "authenticated");
        } else {
          // Nothing survives a reload in memory mode, not even a snapshot:
          // ready waits for the worker.
          assert.deepEqual(snaps, []);
          assert.equal((await initial(page)).status, "loading");
        }
      } finally {
        await ctx.close();
        env.stop();
      }
    });
  }
});

// DPoP (RFC 9449) against the test issuer started with -dpop: it checks
// proofs (typ, ES256, signature, htm, htu, iat, jti, ath, nonce) and binds
// the tokens to the proof's key. The same attacks against the real broker:
// e2e/dpop_browser_test.go.
describe("browser client with DPoP", { skip, timeout: 600_000 }, () => {
  /** Calls userinfo from the page with the token alone, as Bearer or as DPoP with the given proof. */
  const userinfoFromPage = (page, env, scheme, proof) =>
    page.evaluate(
      async ([issuer, scheme, proof]) => {
        const at = await window.bk.getAccessToken();
        const headers = { Authorization: `${scheme} ${at}` };
        if (proof) headers.DPoP = proof;
        const r = await fetch(issuer + "/userinfo", { headers });
        return { status: r.status, auth: r.headers.get("WWW-Authenticate") };
      },
      [env.issuer, scheme, proof],
    );

  test("login binds the tokens to the worker's key; fetchWithAuth, getUserInfo and createDPoPProof send proofs", async () => {
    const env = await startIssuer(["-dpop"]);
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      assert.equal(await page.evaluate(() => window.bk.getState().tokenType), "DPoP");
      const info = await page.evaluate(async (issuer) => {
        const r = await window.bk.fetchWithAuth(issuer + "/userinfo?x=1");
        return { status: r.status, body: await r.json(), user: await window.bk.getUserInfo() };
      }, env.issuer);
      assert.equal(info.status, 200, JSON.stringify(info.body));
      assert.equal(info.user.email, "ada@example.com");
      assert.equal((await env.stats()).dpop_proofs, 3, "code exchange, fetchWithAuth, getUserInfo");

      // The access token alone, as a Bearer token: refused.
      assert.equal((await userinfoFromPage(page, env, "Bearer")).status, 401);
      // With a proof from createDPoPProof: accepted; the same proof again
      // (a replay), or one for another URL: refused.
      // docs/react.md's createDPoPProof example, as written there.
      const doc = readFileSync(join(pkg, "..", "docs", "react.md"), "utf8");
      const snippet = doc.match(/```js\n(const at = await bk\.getAccessToken\(\);[\s\S]*?)\n```/)?.[1];
      assert.ok(snippet, "docs/react.md has the createDPoPProof example");
      const fromDoc = await page.evaluate(
        ([snippet, url]) => new Function("bk", "url", `return (async () => { ${snippet}; return r.status; })();`)(window.bk, url),
        [snippet, env.issuer + "/userinfo"],
      );
      assert.equal(fromDoc, 200, "the documented example works");
      const proof = await page.evaluate((u) => window.bk.createDPoPProof("GET", u), env.issuer + "/userinfo");
      assert.equal((await userinfoFromPage(page, env, "DPoP", proof)).status, 200);
      const replay = await userinfoFromPage(page, env, "DPoP", proof);
      assert.equal(replay.status, 401);
      assert.match(replay.auth, /invalid_dpop_proof/);
      const elsewhere = await page.evaluate((u) => window.bk.createDPoPProof("GET", u), env.issuer + "/other");
      assert.equal((await userinfoFromPage(page, env, "DPoP", elsewhere)).status, 401);
      assert.deepEqual(page.errors, []);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("page script (XSS) decrypts the stored refresh token: alone it is refused off the device, the page still refreshes", async () => {
    const env = await startIssuer(["-dpop"]);
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      const stolen = await stealRefreshToken(page);
      const r = await redeem(env, stolen);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error, "invalid_grant");
      // The page that holds the key refreshes with the same token.
      const before = await token(page);
      const after = await token(page, 3600);
      assert.ok(!after.startsWith("error:") && after !== before, after);
      assert.equal((await env.stats()).refresh_grants, 1);

      // What DPoP does not stop: while the page is open, the script can
      // have the stored key (usable, not exportable) sign a proof for its
      // own server, which redeems the stolen token with it, once.
      const stolenAgain = await stealRefreshToken(page);
      const proof = await signWithStoredKey(page, "POST", env.issuer + "/oauth2/token");
      const withProof = await redeem(env, stolenAgain, { DPoP: proof });
      assert.equal(withProof.status, 200, JSON.stringify(withProof.body));
      assert.equal(withProof.body.token_type, "DPoP");
      // Nor proofs made in advance (dated ahead) for later use, unless the
      // server demands nonces: a proof without the current nonce is refused.
      const later = await signWithStoredKey(page, "POST", env.issuer + "/oauth2/token");
      await env.post("/test/dpop-nonce?nonce=fresh");
      const withOldProof = await redeem(env, withProof.body.refresh_token, { DPoP: later });
      assert.equal(withOldProof.status, 400);
      assert.equal(withOldProof.body.error, "use_dpop_nonce");
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("the DPoP key cannot be exported and is replaced at logout", async () => {
    const env = await startIssuer(["-dpop"]);
    const ctx = await browser(env);
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      const key = await storedDPoPKey(page);
      assert.ok(key, "a DPoP key pair is stored");
      assert.equal(key.extractable, false);
      assert.deepEqual(key.usages, ["sign"]);
      assert.deepEqual(key.exports, { jwk: "InvalidAccessError", pkcs8: "InvalidAccessError" });
      await logout(page, env);
      const next = await storedDPoPKey(page);
      assert.ok(next && next.x !== key.x, "a new key after logout");
      assert.equal(next.extractable, false);
      // The next login is bound to the new key, and works.
      await login(page, env);
      assert.equal(await page.evaluate(() => window.bk.getState().tokenType), "DPoP");
      assert.equal((await storedDPoPKey(page)).x, next.x);
      const status = await page.evaluate(async (u) => (await window.bk.fetchWithAuth(u)).status, env.issuer + "/userinfo");
      assert.equal(status, 200);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("a DPoP nonce the server asks for is sent, after one retry", async () => {
    const env = await startIssuer(["-dpop"]);
    const ctx = await browser(env);
    try {
      await env.post("/test/dpop-nonce?nonce=first");
      const page = await openApp(ctx, env);
      await login(page, env);
      assert.equal(await status(page), "authenticated");
      assert.equal((await env.stats()).nonce_challenges, 1, "the code exchange retried once");
      await env.post("/test/dpop-nonce?nonce=second");
      const st = await page.evaluate(async (u) => (await window.bk.fetchWithAuth(u)).status, env.issuer + "/userinfo");
      assert.equal(st, 200);
      assert.equal((await env.stats()).nonce_challenges, 2, "fetchWithAuth retried once with the API's nonce");
      // A refresh: the token endpoint's nonce is still "second" (one
      // server), so no challenge.
      assert.ok(!(await token(page, 3600)).startsWith("error:"));
      assert.equal((await env.stats()).nonce_challenges, 2);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("dedicated workers in two tabs: after a logout and a new login in one, the other signs with the new key", async () => {
    const env = await startIssuer(["-dpop"]);
    const ctx = await browser(env, { worker: "dedicated" });
    try {
      const tab1 = await openApp(ctx, env);
      await login(tab1, env);
      const tab2 = await openApp(ctx, env);
      assert.equal(await status(tab2), "authenticated");
      const first = (await storedDPoPKey(tab1)).x;
      await logout(tab1, env);
      await tab2.waitForFunction(() => document.getElementById("status").textContent === "login_required");
      await login(tab1, env);
      assert.notEqual((await storedDPoPKey(tab1)).x, first);
      // tab2's worker lived through all of it: it must sign with the new key.
      await tab2.waitForFunction(() => document.getElementById("status").textContent === "authenticated");
      const st = await tab2.evaluate(async (u) => (await window.bk.fetchWithAuth(u)).status, env.issuer + "/userinfo");
      assert.equal(st, 200);
      assert.equal((await env.stats()).refresh_rejected, 0);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test('storage "memory": the refresh token is not in IndexedDB, the DPoP key is (not extractable)', async () => {
    const env = await startIssuer(["-dpop"]);
    const ctx = await browser(env, { storage: "memory" });
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      assert.equal(await page.evaluate(() => window.bk.getState().tokenType), "DPoP");
      assert.equal((await storedDPoPKey(page)).extractable, false);
      await assert.rejects(stealRefreshToken(page), /no refresh token in IndexedDB/);
      const st = await page.evaluate(async (u) => (await window.bk.fetchWithAuth(u)).status, env.issuer + "/userinfo");
      assert.equal(st, 200);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test('storage "session": a logout in one tab leaves the other tab\'s session and key alone', async () => {
    const env = await startIssuer(["-dpop"]);
    const ctx = await browser(env, { storage: "session" });
    try {
      const tab1 = await openApp(ctx, env);
      await login(tab1, env);
      // The second tab logs in on its own (the issuer remembers the user).
      const tab2 = await openApp(ctx, env);
      assert.equal(await status(tab2), "login_required", "session storage: a session per tab");
      await tab2.click("#login");
      await tab2.waitForFunction(() => document.getElementById("status")?.textContent === "authenticated", null, { timeout: 20_000 });
      await logout(tab1, env);
      // tab2, reloaded (its worker starts anew and reads its key), still works.
      await tab2.reload();
      await tab2.waitForFunction(() => window.confirmedMs !== undefined);
      assert.equal(await status(tab2), "authenticated");
      const st = await tab2.evaluate(async (u) => (await window.bk.fetchWithAuth(u)).status, env.issuer + "/userinfo");
      assert.equal(st, 200);
      assert.ok(!(await token(tab2, 3600)).startsWith("error:"), "tab2 refreshes with its key");
      assert.equal((await env.stats()).refresh_rejected, 0);
    } finally {
      await ctx.close();
      env.stop();
    }
  });

  test("dpop: false keeps Bearer tokens", async () => {
    const env = await startIssuer(["-dpop"]);
    const ctx = await browser(env, { dpop: false });
    try {
      const page = await openApp(ctx, env);
      await login(page, env);
      assert.equal(await page.evaluate(() => window.bk.getState().tokenType), "Bearer");
      assert.equal((await userinfoFromPage(page, env, "Bearer")).status, 200);
      const err = await page.evaluate((u) => window.bk.createDPoPProof("GET", u).catch((e) => e.code), env.issuer + "/userinfo");
      assert.equal(err, "dpop_not_in_use");
      assert.equal((await env.stats()).dpop_proofs, 0);
      assert.equal(await storedDPoPKey(page), null, "no key is made");
    } finally {
      await ctx.close();
      env.stop();
    }
  });
});
