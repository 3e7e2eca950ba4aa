"""`pip install ./bindings/python` works offline (no index: the in-tree build backend needs
nothing), compiles libheddle into the package, ships the engine bundle, and the installed
package runs with no environment variables; an sdist carries everything to build the same."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict

import pytest

from conftest import PKG, bundle_path

SCRIPT = r"""
import hashlib, sys
import numpy as np
import heddle
prefix = sys.argv[1]
assert heddle.__file__.startswith(prefix), heddle.__file__
assert str(heddle.library_path()).startswith(prefix), heddle.library_path()
assert str(heddle.find_bundle()).startswith(prefix), heddle.find_bundle()
x = np.array([[1, 2, 3, 4, 5]], np.float32)
cfg = {"layers": [{"type": "dense", "input_height": 5, "output_height": 7, "activation": "tanh"},
                  {"type": "dense", "input_height": 7, "output_height": 6, "activation": "relu"},
                  {"type": "dense", "input_height": 6, "output_height": 3}]}
with heddle.Engine() as e, e.create_network(cfg, seed=7) as n:
    print(e.runtime, hashlib.sha256(n.to_bytes()).hexdigest())
"""


def clean_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDDLE_") and k not in ("PYTHONPATH", "PIP_INDEX_URL", "PIP_FIND_LINKS")}
    env["PIP_NO_INDEX"] = "1"  # offline: pip may not reach any index
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["HEDDLE_ENGINE_BUNDLE"] = str(bundle_path())  # the bundle to ship (a fresh build in `npm test`)
    return env


def run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("venv") / "v"
    # --system-site-packages: numpy comes from Debian's python3-numpy
    run([sys.executable, "-m", "venv", "--system-site-packages", str(d)])
    return d


def test_pip_install_works_offline_and_the_package_runs_alone(venv: Path, reference: Dict[str, str], tmp_path: Path) -> None:
    env = clean_env()
    run([str(venv / "bin" / "pip"), "install", "--no-index", str(PKG)], env=env, cwd=tmp_path)
    env.pop("HEDDLE_ENGINE_BUNDLE")
    out = run([str(venv / "bin" / "python"), "-c", SCRIPT, str(venv)], env=env, cwd=tmp_path).stdout.split()
    assert out == ["node", reference["save_safetensors"]]


def test_the_sdist_is_self_contained(venv: Path, tmp_path: Path) -> None:
    env = clean_env()
    code = f"import sys; sys.path.insert(0, {str(PKG / 'build_backend')!r}); import heddle_build; print(heddle_build.build_sdist({str(tmp_path)!r}))"
    name = run([sys.executable, "-c", code], env=env, cwd=PKG).stdout.strip()
    with tarfile.open(tmp_path / name) as t:
        names = t.getnames()
    base = name[: -len(".tar.gz")]
    for need in ("pyproject.toml", "PKG-INFO", "build_backend/heddle_build.py", "src/heddle/_generated/ffi.py", "native/src/heddle.cpp", "native/include/heddle.h", "native/generated/heddle_generated.h", "engine/heddle-engine.mjs"):
        assert f"{base}/{need}" in names, need
    # a wheel built from the sdist alone (no checkout around it) has the library and the engine
    env.pop("HEDDLE_ENGINE_BUNDLE")
    run([str(venv / "bin" / "pip"), "wheel", "--no-index", "--no-deps", "-w", str(tmp_path / "w"), str(tmp_path / name)], env=env, cwd=tmp_path)
    (whl,) = (tmp_path / "w").glob("heddle-*.whl")
    with zipfile.ZipFile(whl) as z:
        files = z.namelist()
    assert "heddle/_lib/libheddle.so" in files and "heddle/_engine/heddle-engine.mjs" in files
    assert "heddle/_generated/abi.py" in files and any(f.endswith(".dist-info/RECORD") for f in files)
