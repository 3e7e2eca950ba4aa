#!/usr/bin/env python3
"""Forward round-trip latency from Python: one 1024-float sample through a network that passes
it on (a disabled 1024x1024 dense layer), so the time is the transport's and the binding's.

Prints p50 / p99 of sequential calls through Network.forward (the idiomatic call: converts,
allocates the output, maps errors), of the same call on a preallocated output through the
generated ctypes prototype (the binding's floor), and the rate of pipelined calls
(Network.forward_pipelined, libheddle's heddle_network_forward_pipelined).

    python3 bindings/python/bench_latency.py [--calls N] [--window W] [--runtime node|bun|deno] [--json]

The engine: --engine 'CMD ...', else $HEDDLE_ENGINE (e.g. "taskset -c 1 bun dist/heddle-engine.mjs"),
else the bundle on --runtime (default node). Pin the client with `taskset -c 0 python3 ...`.
The package: an installed `heddle`, else this checkout's src/ (libheddle built when stale).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _import_heddle():
    try:
        import heddle  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(HERE / "src"))
        import heddle  # noqa: F401,F811
    if not heddle.library_path().is_file():
        sys.path.insert(0, str(HERE / "build_backend"))
        import heddle_build

        os.environ["HEDDLE_LIBRARY"] = str(heddle_build.ensure_library())
    return heddle


PASS_THROUGH = {"layers": [{"type": "dense", "input_height": 1024, "output_height": 1024, "disabled": True}]}


def percentile(sorted_us, q: float) -> float:
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * q))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20000, help="sequential calls timed (default 20000)")
    ap.add_argument("--window", type=int, default=256, help="calls per pipelined batch (default 256)")
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--runtime", choices=("node", "bun", "deno"), default=None)
    ap.add_argument("--engine", default=None, help="the engine command line (overrides HEDDLE_ENGINE)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    a = ap.parse_args(argv)

    heddle = _import_heddle()
    import ctypes

    import numpy as np

    engine = heddle.Engine(a.engine, runtime=a.runtime) if (a.engine or a.runtime) else heddle.Engine()
    with engine, engine.create_network(PASS_THROUGH, seed=1) as net:
        x = (np.arange(1024, dtype=np.float32) % 1024) / 1024
        x1 = x.reshape(1, 1024)
        for _ in range(a.warmup):
            net.forward(x1)
        assert np.array_equal(net.forward(x1), x1)

        # The floor: the generated prototype on preallocated buffers (what forward() wraps).
        # The two are timed alternately, so both see the same background load.
        fwd = net._lib.heddle_network_forward
        ptr = net._ptr
        y = np.empty((1, 1024), np.float32)
        xp, yp = x1.ctypes.data, y.ctypes.data
        perf = time.perf_counter_ns
        lat = np.empty(a.calls, np.float64)
        raw = np.empty(a.calls, np.float64)
        forward = net.forward
        for i in range(a.calls):
            t0 = perf()
            forward(x1)
            t1 = perf()
            if fwd(ptr, xp, 1, yp, 1024):
                raise RuntimeError("forward failed")
            t2 = perf()
            lat[i] = t1 - t0
            raw[i] = t2 - t1
        lat.sort()
        lat /= 1000.0
        raw.sort()
        raw /= 1000.0

        xs = np.tile(x, (a.window, 1)).reshape(a.window, 1, 1024)
        net.forward_pipelined(xs)
        rounds = max(1, a.calls // a.window)
        t0 = time.perf_counter()
        for _ in range(rounds):
            net.forward_pipelined(xs)
        rate = rounds * a.window / (time.perf_counter() - t0)

        result = {
            "client": "python",
            "python": sys.version.split()[0],
            "runtime": engine.runtime,
            "runtime_version": engine.runtime_version,
            "engine_command": engine.command,
            "calls": a.calls,
            "forward_p50_us": round(percentile(lat, 0.5), 2),
            "forward_p99_us": round(percentile(lat, 0.99), 2),
            "raw_p50_us": round(percentile(raw, 0.5), 2),
            "raw_p99_us": round(percentile(raw, 0.99), 2),
            "pipelined_calls_per_s": round(rate),
            "window": a.window,
        }
    if a.json:
        print(json.dumps(result))
    else:
        print(f"engine: {result['runtime']} {result['runtime_version']} ({' '.join(result['engine_command'] or [])})")
        print(
            f"python forward(1024 floats): p50 {result['forward_p50_us']:.1f} us  p99 {result['forward_p99_us']:.1f} us  "
            f"(raw ctypes call: p50 {result['raw_p50_us']:.1f} us  p99 {result['raw_p99_us']:.1f} us)  "
            f"pipelined {result['pipelined_calls_per_s']:.0f} calls/s (window {a.window})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
