// What the browser tests (test/browser.test.mjs, e2e/browser/dpop.mjs) and
// the budget (scripts/budget.mjs) share: the test issuer, a headless
// Chromium with the flags this machine needs, the issuer's login form, and
// what an XSS reads from the client's IndexedDB.
import { execFileSync, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The package's directory (wasm/). */
export const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Builds the test issuer (wasm/internal/cmd/testissuer) into dir. */
export function buildTestIssuer(dir) {
  const bin = join(dir, "testissuer");
  execFileSync("go", ["build", "-o", bin, "./wasm/internal/cmd/testissuer"], { cwd: join(pkg, ".."), stdio: "inherit" });
  return bin;
}

/**
 * Starts the test issuer serving the package; resolves to the environment
 * it prints ({issuer, app, …}) and the process (its stdin's end stops it).
 * args: more flags (-demo DIR serves a built app on its own port).
 */
export async function startTestIssuer(bin, args = []) {
  const proc = spawn(bin, ["-static", pkg, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout }).once("line", resolve);
    proc.once("exit", (code) => reject(new Error("testissuer exited " + code)));
  });
  return { env: JSON.parse(line), proc };
}

/**
 * Launches headless Chromium with its own profile in profileDir; every page
 * gets window.__BK_TEST__ = testParams (read by the test app).
 */
export async function launchChromium(profileDir, testParams) {
  const { chromium } = await import("playwright-core");
  const ctx = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  await ctx.addInitScript((t) => {
    window.__BK_TEST__ = t;
  }, testParams);
  return ctx;
}

/** Logs in on the test app's page through the issuer's form, back to the app. */
export async function submitLogin(page, env) {
  await page.click("#login");
  await page.waitForURL((u) => u.href.startsWith(env.issuer + "/oauth2/auth"));
  await page.fill("input[name=email]", "ada@example.com");
  await page.fill("input[name=password]", "correct horse");
  await page.click("button[type=submit]");
  await page.waitForURL((u) => u.href.startsWith(env.app + "/testapp/"));
}

/**
 * Runs fn(get, arg) in the page as any script of the origin could: get(op)
 * runs op(store) on the client's IndexedDB object store and resolves to its
 * result. fn is sent as source text: it may use only its arguments.
 */
function inClientDB(page, fn, arg) {
  return page.evaluate(
    async ([src, arg]) => {
      const db = await new Promise((resolve, reject) => {
        const r = indexedDB.open("bridgekeeper");
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const get = (op) =>
        new Promise((resolve, reject) => {
          const r = op(db.transaction("kv").objectStore("kv"));
          r.onsuccess = () => resolve(r.result);
          r.onerror = () => reject(r.error);
        });
      return (0, eval)("(" + src + ")")(get, arg);
    },
    [fn.toString(), arg],
  );
}

/**
 * What an XSS does: opens the client's IndexedDB, decrypts every sealed
 * value with the stored (non-extractable, but usable) AES-GCM key and
 * returns the refresh token it finds.
 */
export async function stealRefreshToken(page) {
  const stolen = await inClientDB(page, async (get) => {
    const keys = await get((s) => s.getAllKeys());
    const values = await get((s) => s.getAll());
    const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    // Each "key:NAME" entry is a CryptoKey; NAME/slot entries are sealed with it.
    for (const [j, keyName] of keys.entries()) {
      if (!keyName.startsWith("key:")) continue;
      const name = keyName.slice(4);
      for (const [i, k] of keys.entries()) {
        if (typeof values[i] !== "string" || !k.startsWith(name + "/")) continue;
        const [iv, ct] = values[i].split(".");
        try {
          const pt = await crypto.subtle.decrypt(
            { name: "AES-GCM", iv: unb64(iv), additionalData: new TextEncoder().encode(k) },
            values[j],
            unb64(ct),
          );
          const m = new TextDecoder().decode(pt).match(/"refresh_token":\s*"([^"]+)"/);
          if (m) return m[1];
        } catch {
          // not a value of this key
        }
      }
    }
    return JSON.stringify(keys);
  });
  if (!stolen || stolen.startsWith("[")) throw new Error("no refresh token in IndexedDB; its keys: " + stolen);
  return stolen;
}

/**
 * The stored DPoP key pair as page script sees it in IndexedDB: whether its
 * private key is extractable, what exporting it gives, and the public x.
 */
export function storedDPoPKey(page) {
  return inClientDB(page, async (get) => {
    const id = (await get((s) => s.getAllKeys())).find((k) => k.startsWith("dpop:"));
    if (!id) return null;
    const pair = await get((s) => s.get(id));
    const exports = {};
    for (const format of ["jwk", "pkcs8"]) {
      try {
        await crypto.subtle.exportKey(format, pair.privateKey);
        exports[format] = "exported";
      } catch (e) {
        exports[format] = e.name;
      }
    }
    const pub = await crypto.subtle.exportKey("jwk", pair.publicKey);
    return { extractable: pair.privateKey.extractable, usages: pair.privateKey.usages, exports, x: pub.x };
  });
}

/**
 * What an XSS can still do with DPoP: sign a proof with the stored key (it
 * cannot export it, but it can use it) for a request its own server sends.
 * claims are added to the proof's (iat: seconds, to date it ahead).
 */
export function signWithStoredKey(page, htm, htu, claims = {}) {
  return inClientDB(
    page,
    async (get, [htm, htu, claims]) => {
      const id = (await get((s) => s.getAllKeys())).find((k) => k.startsWith("dpop:"));
      const pair = await get((s) => s.get(id));
      const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
      const b64 = (bytes) =>
        btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      const part = (o) => b64(new TextEncoder().encode(JSON.stringify(o)));
      const jti = b64(crypto.getRandomValues(new Uint8Array(16)));
      const input =
        part({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }) +
        "." +
        part({ jti, htm, htu, iat: Math.floor(Date.now() / 1000), ...claims });
      const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input));
      return input + "." + b64(sig);
    },
    [htm, htu, claims],
  );
}

/**
 * A DPoP proof from a key of the caller's own (in Node: the attacker's
 * server, which has a stolen token but not the browser's key).
 */
export async function proofFromOwnKey(htm, htu, claims = {}) {
  const { subtle } = globalThis.crypto;
  const pair = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const { kty, crv, x, y } = await subtle.exportKey("jwk", pair.publicKey);
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input =
    part({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }) +
    "." +
    part({ jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000), ...claims });
  const sig = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, Buffer.from(input));
  return input + "." + Buffer.from(sig).toString("base64url");
}
