// "Your first app" in docs/react.md, followed as written: the section's
// files and commands are taken from the doc's own text, the app is built in
// a temporary directory beside a copy of the package (what `make run` leaves
// in the checkout's wasm/: package.json and dist/), a real broker runs with
// the demo's configuration (as `make run` starts it), the doc's
// `client create` command runs as written, and headless Chromium logs in,
// sees the user, logs out and lands where the doc says.
//
// The only change to the doc's text: the two ports (the broker's 8080, the
// app's 5174) become free ones, so that the test runs beside `make run`.
// npm installs the doc's package.json with --prefer-offline: its React and
// Vite are the demo's (checked below), which `make npm-deps` put in npm's
// cache.
// Run from wasm/ after `npm run build`: node --test test/
// Skips, saying why, when chromium, go, make or the built package is missing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { chromiumPath, launchChromium, pkg } from "../scripts/browser-harness.mjs";

const repo = join(pkg, "..");
const docPath = join(repo, "docs", "react.md");

function onPath(cmd) {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const skip = !existsSync(chromiumPath)
  ? `chromium not found at ${chromiumPath} (apt-get install -y chromium)`
  : !existsSync(join(pkg, "dist", "bridgekeeper.wasm"))
    ? "the package is not built (npm run build)"
    : !onPath("go") || !onPath("make")
      ? "go and make are needed to build the broker (make build)"
      : false;

/**
 * The doc's "Your first app" section: its files (a fenced block after a
 * **`my-app/PATH`** line) and its shell blocks (a fenced sh block whose
 * first line is "# in DIR/…"), in the doc's order.
 */
function readFirstApp(markdown) {
  const start = markdown.indexOf("\n## Your first app\n");
  assert.ok(start >= 0, 'docs/react.md has no "## Your first app" section');
  const end = markdown.indexOf("\n## ", start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  const files = new Map();
  const shell = [];
  const fence = /(?:^\*\*`([^`]+)`\*\*\n\n)?^```(\w*)\n([\s\S]*?)^```$/gm;
  for (const m of section.matchAll(fence)) {
    const [, file, lang, body] = m;
    if (file) {
      files.set(file, body);
    } else if (lang === "sh") {
      const [first, ...rest] = body.split("\n");
      const dir = first.match(/^# in ([\w.-]+)\//)?.[1];
      assert.ok(dir, `a sh block of "Your first app" does not say where it runs ("# in DIR/"): ${first}`);
      // One command a line; a trailing backslash continues it.
      const commands = rest.join("\n").replace(/\\\n\s*/g, "").split("\n").filter((l) => l.trim() !== "");
      shell.push({ dir, commands });
    }
  }
  return { section, files, shell };
}

/** A value assigned in scripts/demo.sh (NAME=value, NAME='value' or "value"). */
function demoScriptValue(script, name) {
  const m = script.match(new RegExp(`^${name}=(?:'([^']*)'|"([^"]*)"|(\\S*))$`, "m"));
  assert.ok(m, `scripts/demo.sh sets no ${name}`);
  return m[1] ?? m[2] ?? m[3];
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitHTTP(url, proc, name) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited (${proc.exitCode}) before answering ${url}:\n${proc.log()}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not answer ${url} within 60 s:\n${proc.log()}`);
}

const doc = readFileSync(docPath, "utf8");
const demoScript = readFileSync(join(repo, "scripts", "demo.sh"), "utf8");
const tmp = mkdtempSync(join(tmpdir(), "bk-firstapp-"));
const procs = [];
let env;

function startProc(name, cmd, args, opts) {
  const log = [];
  const proc = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"], detached: true });
  proc.stdout.on("data", (d) => log.push(d));
  proc.stderr.on("data", (d) => log.push(d));
  proc.log = () => Buffer.concat(log).toString();
  proc.name = name;
  procs.push(proc);
  return proc;
}

before(async () => {
  if (skip) return;
  const { files, shell } = readFirstApp(doc);
  const config = demoScriptValue(demoScript, "CONFIG");
  const email = demoScriptValue(demoScript, "DEMO_EMAIL");
  const password = demoScriptValue(demoScript, "DEMO_PASSWORD");
  const brokerPort = await freePort();
  const appPort = await freePort();
  const issuer = `http://127.0.0.1:${brokerPort}`;
  const app = `http://127.0.0.1:${appPort}`;
  // The doc's ports, and only them, become free ones.
  const localize = (text) =>
    text
      .replaceAll("127.0.0.1:8080", `127.0.0.1:${brokerPort}`)
      .replaceAll("127.0.0.1:5174", `127.0.0.1:${appPort}`)
      .replace(/\bport: 5174\b/g, `port: ${appPort}`);

  // What `make run` leaves for the app: the package's files in the
  // checkout's wasm/ (package.json and dist/, the package's "files").
  const checkout = join(tmp, "bridgekeeper");
  mkdirSync(join(checkout, "wasm"), { recursive: true });
  cpSync(join(pkg, "package.json"), join(checkout, "wasm", "package.json"));
  cpSync(join(pkg, "dist"), join(checkout, "wasm", "dist"), { recursive: true });

  // The app's files, as the doc prints them.
  const appDir = join(tmp, "my-app");
  for (const [file, body] of files) {
    assert.match(file, /^my-app\//, `a file of "Your first app" outside my-app/: ${file}`);
    const path = join(tmp, file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, localize(body));
  }

  const dsn = "sqlite:" + join(tmp, "bk.db");
  const brokerEnv = { ...process.env, BRIDGEKEEPER_DEMO_DSN: dsn };
  const run = (dir, command, extra = "") => {
    const cwd = dir === "bridgekeeper" ? repo : dir === "my-app" ? appDir : assert.fail(`unknown directory ${dir}/`);
    execFileSync("bash", ["-c", localize(command) + extra], { cwd, env: brokerEnv, stdio: "inherit", timeout: 300_000 });
  };

  let makeRun = false;
  let clientCreated = false;
  for (const { dir, commands } of shell) {
    for (const command of commands) {
      if (command === "make run") {
        // make run: build, then the broker with the demo's configuration
        // and the demo user (scripts/demo.sh); here on a database of the
        // test's own and a free port.
        assert.equal(dir, "bridgekeeper");
        execFileSync("make", ["build"], { cwd: repo, stdio: "inherit" });
        const bk = join(repo, "bin", "bridgekeeper");
        execFileSync(bk, ["migrate", "--config", config], { cwd: repo, env: brokerEnv, stdio: "ignore" });
        execFileSync(bk, ["user", "create", "--config", config, "--email", email, "--name", "Demo User", "--password-stdin"], {
          cwd: repo,
          env: brokerEnv,
          input: password + "\n",
          stdio: ["pipe", "ignore", "inherit"],
        });
        const broker = startProc("broker", bk, ["serve", "--config", config, "--issuer", issuer, "--listen", `127.0.0.1:${brokerPort}`], {
          cwd: repo,
          env: brokerEnv,
        });
        await waitHTTP(issuer + "/.well-known/openid-configuration", broker, "the broker");
        makeRun = true;
      } else if (command.startsWith("bin/bridgekeeper client create ")) {
        assert.ok(makeRun, "client create before make run");
        run(dir, command);
        clientCreated = true;
      } else if (command === "npm install") {
        run(dir, command, " --prefer-offline --no-audit --no-fund --loglevel=error");
      } else if (command === "npm run dev") {
        assert.ok(clientCreated, "the app starts before its client is registered");
        const vite = startProc("npm run dev", "npm", ["run", "dev"], { cwd: appDir, env: process.env });
        await waitHTTP(app + "/", vite, "npm run dev");
      } else {
        assert.fail(`"Your first app" has a command this test does not know: ${command}`);
      }
    }
  }
  assert.ok(makeRun && clientCreated, "the doc starts the broker and registers the client");
  env = { issuer, app, email, password, files, config };
});

after(() => {
  for (const p of procs.reverse()) {
    if (p.exitCode === null) {
      try {
        process.kill(-p.pid, "SIGTERM"); // its process group: npm's vite, the broker's plugins
      } catch {
        // gone already
      }
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe("Your first app (docs/react.md)", { skip, timeout: 600_000 }, () => {
  test("the doc agrees with make run and the demo", () => {
    const { section } = readFirstApp(doc);
    // The broker make run starts: its configuration, its demo user.
    assert.ok(section.includes(`--config ${env.config}`), `the client create command names ${env.config}`);
    assert.ok(section.includes(`${env.email}\` / \`${env.password}\``), "the doc names the demo user of scripts/demo.sh");
    // The app's React and Vite are the demo's (tested, and in npm's cache).
    const demo = JSON.parse(readFileSync(join(pkg, "example", "package.json"), "utf8"));
    const mine = JSON.parse(env.files.get("my-app/package.json"));
    assert.equal(mine.dependencies.react, demo.dependencies.react);
    assert.equal(mine.dependencies["react-dom"], demo.dependencies["react-dom"]);
    assert.equal(mine.devDependencies.vite, demo.devDependencies.vite);
    assert.equal(mine.dependencies["@bridgekeeper/client"], "file:../bridgekeeper/wasm");
    // Links to the sections it sends the reader to exist.
    for (const [, anchor] of section.matchAll(/\]\(#([\w-]+)\)/g)) {
      const headings = [...doc.matchAll(/^#+ (.+)$/gm)].map(([, h]) =>
        h.toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-"),
      );
      assert.ok(headings.includes(anchor), `no heading for #${anchor}`);
    }
  });

  test("log in as the demo user, see the user, log out to /signed-out", async () => {
    const ctx = await launchChromium(join(tmp, "profile"), {});
    const errors = [];
    const page = await ctx.newPage();
    try {
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("response", (r) => {
        if (r.status() >= 400 && new URL(r.url()).pathname !== "/favicon.ico") errors.push(`HTTP ${r.status()} ${r.url()}`);
      });
      await page.goto(env.app + "/");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForURL((u) => u.href.startsWith(env.issuer + "/"));
      await page.fill("input[name=email]", env.email);
      await page.fill("input[name=password]", env.password);
      await page.click("button[type=submit]");
      // Back through /callback (no route of the app's) to the login's appState.
      await page.getByText(`Signed in as Demo User (${env.email})`).waitFor({ timeout: 20_000 });
      assert.equal(page.url(), env.app + "/");
      // A reload keeps the session.
      await page.reload();
      await page.getByText(`Signed in as Demo User (${env.email})`).waitFor({ timeout: 20_000 });

      await page.getByRole("button", { name: "Log out" }).click();
      await page.waitForURL(env.app + "/signed-out", { timeout: 20_000 });
      await page.getByText("You have signed out.").waitFor({ timeout: 20_000 });
      await page.getByRole("button", { name: "Log in" }).waitFor();

      // Logging in again from /signed-out lands on "/" (appState), and the
      // broker asks for the password again: the logout ended its session.
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForURL((u) => u.href.startsWith(env.issuer + "/"));
      await page.fill("input[name=email]", env.email);
      await page.fill("input[name=password]", env.password);
      await page.click("button[type=submit]");
      await page.getByText(`Signed in as Demo User (${env.email})`).waitFor({ timeout: 20_000 });
      assert.equal(page.url(), env.app + "/");
      assert.deepEqual(errors, []);
    } catch (e) {
      // Say what the page showed, not only which wait timed out.
      const shown = `${page.url()}: ${await page.locator("body").innerText().catch(() => "?")}`;
      e.message += `\n  the page: ${shown}\n  errors: ${JSON.stringify(errors)}`;
      throw e;
    } finally {
      await ctx.close();
    }
  });
});
