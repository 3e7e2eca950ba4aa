#!/usr/bin/env bash
# Runs the WebGPU bit-equality checks on the GPU device machine (NVIDIA, Dawn over Vulkan), from
# what scripts/pack-device.sh put into .device/ (name `.device` in the device tool's carry):
#   bash scripts/webgpu-device.sh [checks options: --large --adversary --filter X]
#   bash scripts/webgpu-device.sh --bench [bench options]   (the benchmark instead: Heddle's
#       webgpu and cpu backends, then PyTorch fp32 with TF32 off on the same GPU)
# Prints nvidia-smi's view, the adapter report, one line per case and a per-kernel match table;
# copies the log and the JSON summary into $OUT when it is set. Exit code: that of the checks.
# Locally (no NVIDIA), HEDDLE_DEVICE_LOCAL=1 skips the .deb and driver steps (for testing the pack).
set -uo pipefail
cd "$(dirname "$0")/.."
dev=.device
[ -f "$dev/checks.mjs" ] || { echo "webgpu-device: $dev/checks.mjs is missing; run scripts/pack-device.sh here first" >&2; exit 2; }

if [ -z "${HEDDLE_DEVICE_LOCAL:-}" ]; then
  # The device has no Vulkan loader: unpack Debian's libvulkan1 into / and point it at NVIDIA's ICD.
  for f in "$dev"/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export VK_ICD_FILENAMES=$VK_DRIVER_FILES
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi

node=/tmp/heddle-node
if [ ! -x "$node" ]; then
  if command -v xz >/dev/null; then xz -dc "$dev/node.xz" > "$node"
  else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$dev/node.xz" "$node"
  fi
  chmod +x "$node"
fi
echo "node $("$node" --version)"

if [ "${1:-}" = "--bench" ]; then
  shift
  blog=/tmp/heddle-bench.log
  small=()
  for a in "$@"; do [ "$a" = "--small" ] && small=(--small); done
  python3 scripts/bench_torch.py "${small[@]}" 2>&1 | tee "$blog"
  "$node" "$dev/bench.mjs" "$@" 2>&1 | tee -a "$blog"
  rc=${PIPESTATUS[0]}
  python3 - "$blog" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith('{"'):
        rows += json.loads(line)["rows"]
print("\n## side by side (ms, median; GFLOP/s)\n")
print("| workload | op | " + " | ".join(sorted({r["backend"] for r in rows})) + " |")
backs = sorted({r["backend"] for r in rows})
print("|---|---|" + "---:|" * len(backs))
keys = []
for r in rows:
    if (r["workload"], r["op"]) not in keys: keys.append((r["workload"], r["op"]))
for w, op in keys:
    cells = []
    for b in backs:
        m = [r for r in rows if r["workload"] == w and r["op"] == op and r["backend"] == b]
        cells.append(f"{m[0]['ms']:.1f} ms, {m[0]['gflops']:.1f}" if m else "")
    print(f"| {w} | {op} | " + " | ".join(cells) + " |")
PY
  [ -n "${OUT:-}" ] && cp "$blog" "$OUT/bench.log"
  echo "webgpu-device: bench exit $rc"
  exit "$rc"
fi

log=/tmp/heddle-webgpu-checks.log
"$node" "$dev/checks.mjs" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then
  cp "$log" "$OUT/webgpu-checks.log"
  tail -n 1 "$log" > "$OUT/webgpu-summary.json"
fi
echo "webgpu-device: exit $rc"
exit "$rc"
