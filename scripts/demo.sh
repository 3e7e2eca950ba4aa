#!/usr/bin/env bash
# The main job on the default (CPU backend, Node): train a small network with a progress bar,
# save it, reload it and show that the reloaded network gives the same bits.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec node dist/cli.js demo "$@"
