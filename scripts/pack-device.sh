#!/usr/bin/env bash
# Packs what the GPU device machine needs to run the WebGPU checks into .device/ (git-ignored):
#   node.xz                           this machine's node binary, xz-compressed (the device has no Node.js)
#   node_modules/webgpu/              the npm package webgpu: index.js, package.json, dist/linux-x64/ (Dawn)
#   lib{vulkan1,glvnd0,gl1,glx0,egl1,opengl0,gles2}_*.deb   Vulkan loader + GL dispatch for NVIDIA's ICD, amd64
#   checks.mjs                        tests/webgpu/main.ts bundled with esbuild (core + checks)
#   bench.mjs                         scripts/bench-webgpu.ts bundled (GPU vs CPU backend throughput)
# Then run scripts/webgpu-device.sh there (docs/webgpu.md gives the device tool call).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.device
mkdir -p "$out/node_modules/webgpu/dist"

# node
node_bin=$(readlink -f "$(command -v node)")
if [ ! -f "$out/node.xz" ] || [ "$node_bin" -nt "$out/node.xz" ]; then
  xz -T2 -6 -c "$node_bin" > "$out/node.xz.tmp" && mv "$out/node.xz.tmp" "$out/node.xz"
fi

# the webgpu package (only what index.js loads on linux-x64)
pkg=node_modules/webgpu
[ -f "$pkg/index.js" ] || { echo "pack-device: $pkg is missing (npm ci)" >&2; exit 1; }
cp "$pkg/index.js" "$pkg/package.json" "$out/node_modules/webgpu/"
rm -rf "$out/node_modules/webgpu/dist/linux-x64"
cp -r "$pkg/dist/linux-x64" "$out/node_modules/webgpu/dist/"

# The Vulkan loader and the GL dispatch libraries NVIDIA's ICD (libGLX_nvidia.so.0) links
# against, for amd64, with apt lists of its own (works from any host architecture).
debs=(libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libgles2)
missing=0
for d in "${debs[@]}"; do ls "$out"/"${d}"_*.deb >/dev/null 2>&1 || missing=1; done
if [ "$missing" = 1 ]; then
  lists=/tmp/heddle-apt-amd64
  mkdir -p "$lists/partial"
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
  apt-get "${o[@]}" update -qq >/dev/null
  (cd "$out" && apt-get "${o[@]}" download "${debs[@]}" >/dev/null)
fi

# the checks, bundled (the webgpu package stays outside: it is loaded at run time)
node_modules/.bin/esbuild tests/webgpu/main.ts --bundle --platform=node --format=esm --target=node20 \
  --log-level=error --outfile="$out/checks.mjs"
node_modules/.bin/esbuild scripts/bench-webgpu.ts --bundle --platform=node --format=esm --target=node20 \
  --log-level=error --outfile="$out/bench.mjs"

du -sh "$out"
ls -la "$out"
