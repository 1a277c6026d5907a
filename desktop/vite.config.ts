import { defineConfig } from 'vitest/config';

// Tauri loads the built files from desktop/dist (see src-tauri/tauri.conf.json) and, in dev,
// the dev server on a fixed port.
export default defineConfig({
  base: './',
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2021',
    // The CSP forbids inline scripts; keep everything in external module files.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  test: { environment: 'node', include: ['src/**/*.test.ts'] },
});
