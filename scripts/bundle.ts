/**
 * Bundles the compiled command (dist/cli/main.js) and the packages it uses into one CommonJS
 * file (dist/hchat/main.cjs), which bin/hchat runs. Node resolves and reads some 450 module files
 * to start a server from dist/ and node_modules/, which took most of a process's start: a server
 * was ready in ~0.9 s, bundled in ~0.65 s (every spawned server and peer of the tests pays it
 * too). CommonJS, so that bin/hchat can compile it with V8's code cache (Node 20 has none for ES
 * modules): see bin/hchat. Each command still runs only its own part: esbuild turns the dynamic
 * imports of src/cli/*-command.ts into lazily run module bodies. Left outside: native addons,
 * and packages that read files beside their own code.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import esbuild from 'esbuild';

// The code cache (bin/hchat) of an earlier build would not match: start from nothing.
fs.rmSync('dist/hchat', { recursive: true, force: true });
await esbuild.build({
  entryPoints: ['dist/cli/main.js'],
  outfile: 'dist/hchat/main.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // import() of an external package becomes require(): a script compiled by node:vm (bin/hchat)
  // has no loader for import().
  supported: { 'dynamic-import': false },
  // The sources read their own location (src/peer/api.ts finds the web UI beside dist/).
  define: { 'import.meta.url': 'hchatBundleUrl' },
  banner: { js: "const hchatBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
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
// What a code cache was made from: bin/hchat keeps caches under this name, so that none is ever
// read against another build's code (V8 checks only the source's length and its own version).
const digest = crypto
  .createHash('sha256')
  .update(fs.readFileSync('dist/hchat/main.cjs'))
  .digest('hex')
  .slice(0, 16);
fs.writeFileSync('dist/hchat/build-id', digest);
