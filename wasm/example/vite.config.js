import { defineConfig } from "vite";

// JSX through esbuild (no React plugin needed). The client package must not
// be pre-bundled: its worker and .wasm are found next to its modules.
export default defineConfig({
  esbuild: { jsx: "automatic" },
  optimizeDeps: { exclude: ["@bridgekeeper/client"] },
  server: { port: 5173, strictPort: true },
});
