// What the browser tests (test/browser.test.mjs) and the budget
// (scripts/budget.mjs) share: the test issuer, a headless Chromium with the
// flags this machine needs, and the issuer's login form.
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
