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
  // The file is the body of CommonJS's module wrapper already, written out: bin/hchat compiles it
  // as it reads it, with no second copy of the source made by wrapping it.
  banner: {
    js:
      '(function (exports, require, module, __filename, __dirname) {"use strict";' +
      "const hchatBundleUrl = require('node:url').pathToFileURL(__filename).href;",
  },
  footer: { js: '\n})' },
  // No comments or indentation, and only ASCII (esbuild escapes the rest in strings): bin/hchat
  // reads it as latin1, which Node keeps outside V8's heap as one byte a character. As UTF-8
  // with comments the source was 5.4 MB held twice as two bytes a character (22 MB of a server's
  // 112 MB at its ready line, each page a fault to fill). Names stay as written, so stack traces
  // still say which function.
  minifyWhitespace: true,
  legalComments: 'none',
  charset: 'ascii',
  external: [
    'better-sqlite3',
    'sodium-native',
    // They read their package.json or static assets next to their code. (pino is bundled: only
    // its transports run worker files, and src/server/ops-log.ts writes to stderr itself.)
    '@fastify/swagger',
    '@fastify/swagger-ui',
  ],
  logLevel: 'warning',
});
const bundled = fs.readFileSync('dist/hchat/main.cjs');
const nonAscii = bundled.findIndex((b) => b > 0x7f);
if (nonAscii >= 0)
  throw new Error(
    `dist/hchat/main.cjs: a byte beyond ASCII at ${nonAscii} (bin/hchat reads latin1)`,
  );
// What a code cache was made from: bin/hchat keeps caches under this name, so that none is ever
// read against another build's code (V8 checks only the source's length and its own version).
const digest = crypto.createHash('sha256').update(bundled).digest('hex').slice(0, 16);
fs.writeFileSync('dist/hchat/build-id', digest);
