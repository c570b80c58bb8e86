// The React demo (wasm/example) as a user gets it: `vite build` of the app
// with the package installed the way its package.json says (file:..), the
// built page served like any static host serves a single-page app, loaded
// in headless Debian Chromium against the oidctest issuer.
// Run from wasm/ after `npm run build` and `npm ci --prefix example`: node --test test/
// Skips, saying why, when chromium or the demo's packages are missing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildTestIssuer, chromiumPath, launchChromium, pkg, startTestIssuer } from "../scripts/browser-harness.mjs";

const example = join(pkg, "example");
const vite = join(example, "node_modules", ".bin", "vite");
const skip = !existsSync(chromiumPath)
  ? `chromium not found at ${chromiumPath} (apt-get install -y chromium)`
  : !existsSync(join(pkg, "dist", "bridgekeeper.wasm"))
    ? "the package is not built (npm run build)"
    : !existsSync(vite)
      ? "the demo's packages are not installed (npm ci --prefix wasm/example)"
      : false;

const tmp = mkdtempSync(join(tmpdir(), "bk-demo-"));
const out = join(tmp, "demo-dist");
let env;
let stop = () => {};

before(async () => {
  if (skip) return;
  const bin = buildTestIssuer(tmp);
  const started = await startTestIssuer(bin, ["-demo", out]);
  env = started.env;
  stop = () => started.proc.stdin.end();
  // The production build, as `npm run build` in wasm/example makes it,
  // for this issuer (the demo reads it from VITE_BK_* at build time).
  execFileSync(vite, ["build", "--outDir", out, "--emptyOutDir", "--logLevel", "warn"], {
    cwd: example,
    stdio: "inherit",
    env: { ...process.env, VITE_BK_ISSUER: env.issuer, VITE_BK_CLIENT_ID: "test-spa", VITE_BK_API: env.issuer },
  });
});

after(() => {
  stop();
  rmSync(tmp, { recursive: true, force: true });
});

let profiles = 0;
async function openDemo(path) {
  const ctx = await launchChromium(join(tmp, "profile-" + profiles++), {});
  const page = await ctx.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e));
  // Files of the build that fail to load (the demo has no favicon; its
  // API is not running here).
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (r.status() >= 400 && u.pathname !== "/favicon.ico" && !u.pathname.startsWith("/api/")) {
      page.errors.push(`HTTP ${r.status()} ${r.url()}`);
    }
  });
  await page.goto(env.demo + path);
  return { ctx, page };
}

/** Logs in through the issuer's form from the page's own "Log in" button. */
async function loginFrom(page) {
  await page.locator("main button.primary").click();
  await page.waitForURL((u) => u.href.startsWith(env.issuer + "/oauth2/auth"));
  await page.fill("input[name=email]", "ada@example.com");
  await page.fill("input[name=password]", "correct horse");
  await page.click("button[type=submit]");
  await page.waitForURL((u) => u.href.startsWith(env.demo + "/") && !u.href.includes("/callback"));
  await page.getByTestId("whoami").waitFor();
}

describe("React demo, dev server", { skip, timeout: 120_000 }, () => {
  // docs/react.md's setting for a locally installed package left out: the
  // dev server refuses worker.js (outside server.fs.allow, HTTP 403). The
  // app says so within the start-up time instead of "Loading…" for ever.
  test("a dev server refusing worker.js shows an error, not Loading… for ever", async () => {
    const { createServer } = await import(join(example, "node_modules", "vite", "dist", "node", "index.js"));
    process.env.VITE_BK_ISSUER = env.issuer;
    process.env.VITE_BK_CLIENT_ID = "test-spa";
    const server = await createServer({
      root: example,
      configFile: false,
      logLevel: "silent",
      esbuild: { jsx: "automatic" },
      optimizeDeps: { exclude: ["@bridgekeeper/client"] },
      resolve: { dedupe: ["react", "react-dom"] },
      server: { host: "127.0.0.1", port: 0, fs: { allow: ["."] } },
    });
    await server.listen();
    const ctx = await launchChromium(join(tmp, "profile-" + profiles++), {});
    try {
      const page = await ctx.newPage();
      const t0 = Date.now();
      await page.goto(server.resolvedUrls.local[0]);
      await page.getByRole("alert").filter({ hasText: "Login is unavailable" }).waitFor({ timeout: 15_000 });
      assert.ok(Date.now() - t0 < 15_000);
      // The message names the script; the dev server refuses it indeed.
      const text = await page.getByRole("alert").first().innerText();
      const script = text.match(/the worker script (\S+worker\.js)/)?.[1];
      assert.ok(script, text);
      assert.equal((await fetch(script)).status, 403, script);
      assert.equal(await page.getByText("Loading…").count(), 0);
    } finally {
      await ctx.close();
      await server.close();
    }
  });
});

describe("React demo, production build", { skip, timeout: 300_000 }, () => {
  test("the built page renders the app (one React in the bundle)", async () => {
    const { ctx, page } = await openDemo("/");
    try {
      await page.getByRole("navigation", { name: "Main" }).getByText("Bridgekeeper demo").waitFor();
      // Past "Loading…": the worker and the .wasm of the build started.
      await page.getByRole("navigation", { name: "Main" }).getByRole("button", { name: "Log in" }).waitFor();
      assert.ok((await page.locator("main h1").count()) > 0, "the home page rendered");
      // Two copies of React fail here: "Cannot read properties of null (reading 'useMemo')".
      assert.deepEqual(page.errors, []);
    } finally {
      await ctx.close();
    }
  });

  // The client puts the page's path back after the login callback; the
  // app's router must show that page, not the one it rendered for /callback.
  for (const [path, title] of [
    ["/profile", "Profile"],
    ["/checkout", "Checkout"],
  ]) {
    test(`a login started on ${path} lands on ${path} showing that page`, async () => {
      const { ctx, page } = await openDemo(path);
      try {
        await page.getByRole("heading", { level: 1, name: title }).waitFor();
        await loginFrom(page);
        assert.equal(new URL(page.url()).pathname, path);
        await page.getByRole("heading", { level: 1, name: title }).waitFor({ timeout: 5000 });
        const current = page.getByRole("navigation", { name: "Main" }).locator('a[aria-current="page"]');
        assert.equal(await current.textContent(), title);
        assert.deepEqual(page.errors, []);
      } finally {
        await ctx.close();
      }
    });
  }
});
