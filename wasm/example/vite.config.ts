import { defineConfig } from "vite";

// JSX through esbuild's automatic runtime: no React plugin needed. The
// client package stays out of dependency pre-bundling so that its worker.js
// and bridgekeeper.wasm are resolved next to its own modules.
export default defineConfig({
  esbuild: { jsx: "automatic" },
  optimizeDeps: { exclude: ["@bridgekeeper/client"] },
  // The client package is ../ (a file: dependency): let the dev server
  // serve its dist/ (worker.js, bridgekeeper.wasm) besides this app.
  server: { host: "127.0.0.1", port: 5173, strictPort: true, fs: { allow: [".", "../dist"] } },
  preview: { host: "127.0.0.1", port: 5173, strictPort: true },
  build: { target: "es2022" },
});
