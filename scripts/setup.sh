#!/usr/bin/env bash
# Installs what Heddle needs on a fresh Debian 12 machine with Node 20 (run as root or with sudo
# available for apt). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js 20+ is required (apt-get install nodejs npm)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "setup: Node.js 20+ is required, found $(node --version)" >&2
  exit 1
fi

# npm dependencies (Deno and Bun come as npm packages that ship their binaries).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

npm run build --silent >/dev/null

# Debian's Chromium, headless, for the conformance suite's browser column (playwright-core, a
# dev dependency, drives /usr/bin/chromium; it downloads no browser of its own).
if ! dpkg -s chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# The ABI's code generator and C binding: Debian's flatc 2.0.8 and FlatBuffers headers (the
# committed bindings come from exactly this flatc), plus cmake and a C/C++ compiler for libheddle.
abi_pkgs=()
for p in flatbuffers-compiler libflatbuffers-dev cmake g++; do
  dpkg -s "$p" >/dev/null 2>&1 || abi_pkgs+=("$p")
done
if [ ${#abi_pkgs[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${abi_pkgs[@]}" >/dev/null 2>&1; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${abi_pkgs[@]}" >/dev/null
  fi
fi
