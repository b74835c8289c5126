/**
 * Bundles the compiled command (dist/cli/main.js) and the packages it uses into a few files
 * (dist/hchat/), which bin/hchat runs. Node resolves and reads some 450 module files to start a
 * server from dist/ and node_modules/, which took most of a process's start: a server was ready
 * in ~0.9 s, bundled in ~0.65 s (every spawned server and peer of the tests pays it too).
 * Each command still loads only its part (chunks split at the dynamic imports of
 * src/cli/*-command.ts). Left outside: native addons, and packages that read files beside their
 * own code.
 */
import fs from 'node:fs';
import esbuild from 'esbuild';

// Chunks are named by their content: without this, an earlier build's would stay beside them.
fs.rmSync('dist/hchat', { recursive: true, force: true });
await esbuild.build({
  entryPoints: ['dist/cli/main.js'],
  outdir: 'dist/hchat',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // The bundled CommonJS packages call require(): give the ES module one.
  banner: {
    js: "import { createRequire as hchatCreateRequire } from 'node:module'; const require = hchatCreateRequire(import.meta.url);",
  },
  external: [
    'better-sqlite3',
    'sodium-native',
    // They read their package.json, static assets or worker files next to their code.
    '@fastify/swagger',
    '@fastify/swagger-ui',
    'pino',
  ],
  logLevel: 'warning',
});
