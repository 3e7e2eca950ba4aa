#!/usr/bin/env bash
# Installs what Heddle needs on a fresh Debian 12 machine with Node 20 (run as root or with sudo
# available for apt). Idempotent: a second run only checks.
#   scripts/setup.sh          npm packages and the build: enough for the CLI and the demo
#   scripts/setup.sh --tests  also what the test suite needs (Chromium, Vulkan CPU drivers,
#                             flatc, cmake/g++, Python, .NET packages)
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
  # npm 11 writes lockfiles without other platforms' optional packages (deno, rollup builds)
  # and then `npm ci` refuses them as out of sync; `npm install` still installs the locked
  # versions, so fall back to it.
  npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error
fi

npm run build --silent >/dev/null

[ "${1:-}" = "--tests" ] || exit 0

# Debian's Chromium, headless, for the conformance suite's browser column (playwright-core, a
# dev dependency, drives /usr/bin/chromium; it downloads no browser of its own).
if ! dpkg -s chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# WebGPU tests on CPU adapters: Mesa's lavapipe Vulkan driver (Deno's navigator.gpu uses it) and
# the Vulkan loader for Dawn (the npm package webgpu, which uses chromium's SwiftShader ICD).
if ! dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || ! dpkg -s libvulkan1 >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
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

# The Python package (bindings/python): Debian's Python 3 with numpy and pytest for its tests, and
# venv (with pip) for the offline `pip install ./bindings/python` test. Its build needs nothing
# from PyPI: the in-tree backend compiles libheddle with the g++ and FlatBuffers headers above.
py_pkgs=()
for p in python3 python3-numpy python3-pytest python3-venv; do
  dpkg -s "$p" >/dev/null 2>&1 || py_pkgs+=("$p")
done
if [ ${#py_pkgs[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${py_pkgs[@]}" >/dev/null 2>&1; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${py_pkgs[@]}" >/dev/null
  fi
fi

# The .NET binding (bindings/csharp): the .NET 10 SDK (the dotnet machine image has it; elsewhere
# Debian's apt has dotnet-sdk-10.0 once Microsoft's package source is configured) and the test
# project's NuGet packages, restored here once: from /opt/nuget/packages where that folder exists
# (offline), else from the machine's NuGet sources (bindings/csharp/Directory.Build.props). The
# library itself uses no package; its build compiles libheddle with the cmake and g++ above.
if ! command -v dotnet >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dotnet-sdk-10.0 >/dev/null 2>&1; then
    echo "setup: the .NET 10 SDK (dotnet) is missing and apt cannot install dotnet-sdk-10.0: install it for the C# binding (bindings/csharp.test.ts fails without it)" >&2
  fi
fi
if command -v dotnet >/dev/null 2>&1 && [ -d bindings/csharp ]; then
  for proj in bindings/csharp/Heddle.Tests/Heddle.Tests.csproj bindings/csharp/Heddle.Tool/Heddle.Tool.csproj; do
    DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 dotnet restore "$proj" -v quiet >/dev/null
  done
fi
