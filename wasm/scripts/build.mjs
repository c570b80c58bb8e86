// Builds the npm package into dist/: the Go core as bridgekeeper.wasm, the
// worker (with Go's wasm_exec.js), the ES modules and the type declarations.
// Needs Go and the dev dependencies (npm ci). Run from wasm/: npm run build.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(pkg, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

// 1. The Go core.
const wasm = join(dist, "bridgekeeper.wasm");
execFileSync(
  "go",
  ["build", "-trimpath", "-ldflags=-s -w", "-o", wasm, "./wasm/cmd/client"],
  { cwd: join(pkg, ".."), env: { ...process.env, GOOS: "js", GOARCH: "wasm" }, stdio: "inherit" },
);
const goroot = execFileSync("go", ["env", "GOROOT"]).toString().trim();
const wasmExec = readFileSync(join(goroot, "lib", "wasm", "wasm_exec.js"), "utf8");

// 2. The worker: a classic script so it runs as a SharedWorker or a Worker
// everywhere; Go's loader goes first.
await esbuild.build({
  entryPoints: [join(pkg, "src", "worker.ts")],
  outfile: join(dist, "worker.js"),
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  banner: { js: wasmExec },
  logLevel: "warning",
});

// 3. The page modules.
await esbuild.build({
  entryPoints: [join(pkg, "src", "index.ts"), join(pkg, "src", "react.tsx")],
  outdir: dist,
  bundle: true,
  splitting: true,
  format: "esm",
  target: "es2020",
  jsx: "automatic",
  external: ["react", "react/jsx-runtime"],
  minify: true,
  logLevel: "warning",
});

// 4. Type declarations.
execFileSync(join(pkg, "node_modules", ".bin", "tsc"), ["-p", pkg], { stdio: "inherit" });

// 5. Sizes.
const bytes = readFileSync(wasm);
const mb = (n) => (n / 1e6).toFixed(2) + " MB"; // as budget.mjs and the 1.0 MB target
const gz = gzipSync(bytes, { level: 9 }).length;
const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const sizes = { raw: bytes.length, gzip: gz, brotli: br };
writeFileSync(join(dist, "sizes.json"), JSON.stringify(sizes) + "\n");
console.log(`bridgekeeper.wasm: raw ${mb(bytes.length)}, gzip ${mb(gz)}, brotli ${mb(br)}`);
for (const f of ["worker.js", "index.js", "react.js"]) {
  const b = readFileSync(join(dist, f));
  console.log(`${f}: ${(statSync(join(dist, f)).size / 1024).toFixed(1)} KB, gzip ${(gzipSync(b).length / 1024).toFixed(1)} KB`);
}
