#!/usr/bin/env bash
# The steps before the tests, at once: build, type check (the code and the web UI) and format
# check. Fails when any of them fails; each prints its own errors. The build is skipped when the
# last one (dist/.build-stamp, written by `npm run build`) is newer than everything it is made
# from: `npm ci` has just built a clean clone (its prepare step), and building again took a core
# for ~15 s while the type checks, the longest step, waited for it.
set -u
cd "$(dirname "$0")/.."
pids=()
if [ -f dist/.build-stamp ] && [ -z "$(find src web bin scripts package.json package-lock.json \
  tsconfig.json tsconfig.build.json tsconfig.web.json vite.config.ts \
  -newer dist/.build-stamp -print -quit)" ]; then
  echo "build: dist/ is up to date"
else
  npm run --silent build &
  pids+=($!)
fi
npx tsc -p tsconfig.json --noEmit &
pids+=($!)
npx tsc -p tsconfig.web.json --noEmit &
pids+=($!)
npm run --silent format:check &
pids+=($!)
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
