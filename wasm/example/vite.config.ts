import { defineConfig } from "vite";

// JSX through esbuild's automatic runtime: no React plugin needed. The
// client package stays out of dependency pre-bundling so that its worker.js
// and bridgekeeper.wasm are resolved next to its own modules.
export default defineConfig({
  esbuild: { jsx: "automatic" },
  // One React for the app and the client package's React bindings: the
  // package is linked (file:..), and a linked package's imports would
  // otherwise resolve from its own directory. Every app linking the package
  // needs this (docs/react.md); an app installing it from a tarball or the
  // registry gets one React anyway (react is a peer dependency).
  resolve: { dedupe: ["react", "react-dom"] },
  optimizeDeps: { exclude: ["@bridgekeeper/client"] },
  // The client package is ../ (a file: dependency): let the dev server
  // serve its dist/ (worker.js, bridgekeeper.wasm) besides this app.
  server: { host: "127.0.0.1", port: 5173, strictPort: true, fs: { allow: [".", "../dist"] } },
  preview: { host: "127.0.0.1", port: 5173, strictPort: true },
  build: { target: "es2022" },
});
