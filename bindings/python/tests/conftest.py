"""pytest setup for the heddle package's tests.

- The package under test is this checkout's src/ (set HEDDLE_TEST_INSTALLED=1 to test an
  installed heddle instead).
- libheddle: $HEDDLE_LIBRARY, else compiled when stale into bindings/python/build/.
- The engine bundle: $HEDDLE_ENGINE_BUNDLE, else the checkout's dist/heddle-engine.mjs.
- Runtimes: $HEDDLE_TEST_RUNTIMES (comma-separated; default node,deno,bun); node from PATH,
  deno and bun from PATH or the checkout's node_modules/.bin. A runtime that is asked for
  and missing fails its tests (it does not skip).
- The TS core's reference bits: $HEDDLE_PY_REFERENCE (a JSON file), else computed by running
  tests/print-reference.ts with the checkout's vite-node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

TESTS = Path(__file__).resolve().parent
PKG = TESTS.parent
REPO = PKG.parent.parent

if os.environ.get("HEDDLE_TEST_INSTALLED") != "1":
    sys.path.insert(0, str(PKG / "src"))
    if not os.environ.get("HEDDLE_LIBRARY"):
        sys.path.insert(0, str(PKG / "build_backend"))
        import heddle_build

        os.environ["HEDDLE_LIBRARY"] = str(heddle_build.ensure_library())

# Tests choose their engine explicitly; an ambient HEDDLE_ENGINE would hide that.
os.environ.pop("HEDDLE_ENGINE", None)

RUNTIMES = [r for r in os.environ.get("HEDDLE_TEST_RUNTIMES", "node,deno,bun").split(",") if r]


def bundle_path() -> Path:
    env = os.environ.get("HEDDLE_ENGINE_BUNDLE")
    p = Path(env) if env else REPO / "dist" / "heddle-engine.mjs"
    if not p.is_file():
        pytest.fail(f"no engine bundle at {p}: run `npm run build` or set HEDDLE_ENGINE_BUNDLE")
    return p


def runtime_binary(rt: str) -> str:
    found = shutil.which(rt)
    if found:
        return found
    local = REPO / "node_modules" / ".bin" / rt
    if local.exists():
        return str(local)
    pytest.fail(f"runtime {rt} not found on PATH or in node_modules/.bin (npm ci installs deno and bun)")


def engine_argv(rt: str) -> List[str]:
    b = str(bundle_path())
    binary = runtime_binary(rt)
    return [binary, "run", "-A", b] if rt == "deno" else [binary, b]


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(runtime: str):
    import heddle

    e = heddle.Engine(engine_argv(runtime), timeout=120)
    try:
        yield e
    finally:
        e.close()


@pytest.fixture
def node_engine():
    import heddle

    e = heddle.Engine(engine_argv("node"), timeout=120)
    try:
        yield e
    finally:
        e.close()


@pytest.fixture(scope="session")
def reference() -> Dict[str, str]:
    env = os.environ.get("HEDDLE_PY_REFERENCE")
    if env:
        return json.loads(Path(env).read_text("utf-8"))
    vite_node = REPO / "node_modules" / ".bin" / "vite-node"
    if not vite_node.exists():
        pytest.fail("computing the TS core's reference bits needs the checkout's node_modules (npm ci), or set HEDDLE_PY_REFERENCE")
    out = subprocess.run(
        [str(vite_node), str(TESTS / "print-reference.ts")], cwd=REPO, check=True, capture_output=True, text=True, timeout=300
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
