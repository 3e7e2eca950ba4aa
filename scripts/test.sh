#!/usr/bin/env bash
# The whole test suite: set-up, type check, then every test (vitest runs the cross-runtime
# tests under Node, Deno and Bun).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
npm run typecheck --silent
npm test
