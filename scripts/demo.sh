#!/usr/bin/env bash
# `npm run demo`: the whole product on the local stack, from a fresh clone.
# Installs dependencies if they are missing, brings the stack up (or reuses it), and runs
# scripts/demo.ts, which drives the action bundle (dist/) exactly as GitHub Actions would.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -d node_modules ]; then
  echo "demo: installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

npm run --silent stack:up

# dist/ is committed (users run it straight from the tag); build it only when a checkout lacks it.
if [ ! -f dist/index.js ] || [ ! -f dist/post/index.js ]; then
  echo "demo: dist/ is missing, building it (npm run build)"
  npm run --silent build
fi

# Node reads NODE_EXTRA_CA_CERTS only at start-up: the demo's own SQL queries on the standby need the
# stack's CA from the beginning (the action runs get it passed explicitly).
# shellcheck source=/dev/null
. .stack/env
exec node --import tsx scripts/demo.ts "$@"
