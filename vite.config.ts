import { defineConfig } from 'vite';

// The web UI: built into dist/web, served by every peer on its UI port (src/peer/api.ts).
export default defineConfig({
  root: 'web',
  base: '/',
  build: { outDir: '../dist/web', emptyOutDir: true, sourcemap: true },
  oxc: { jsx: { runtime: 'automatic' } },
});
