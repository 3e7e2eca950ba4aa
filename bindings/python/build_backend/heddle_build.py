"""The build backend of the `heddle` Python package (PEP 517 and PEP 660), with no build
requirements, so `pip install ./bindings/python` works offline: pip's isolated build
environment needs nothing from an index.

A wheel holds:

- the pure-Python package (src/heddle, the generated layer included);
- ``heddle/_lib/libheddle.so``: libheddle compiled here with the system C++ compiler
  (``$CXX`` or ``c++``, C++17) from bindings/c (or ``native/`` in an sdist); it needs only the
  FlatBuffers 2.0.8 headers (Debian ``libflatbuffers-dev``). ``HEDDLE_PREBUILT_LIBRARY=PATH``
  ships an already built libheddle.so instead of compiling;
- ``heddle/_engine/heddle-engine.mjs``: the single-file engine, taken from
  ``$HEDDLE_ENGINE_BUNDLE``, an sdist's ``engine/`` or the checkout's ``dist/`` (``npm run
  build``). Without one the wheel still builds (with a warning) and finds the engine at run
  time through ``HEDDLE_ENGINE`` / ``HEDDLE_ENGINE_BUNDLE``.

The same file builds libheddle for a source checkout (tests, the conformance client):

    python3 bindings/python/build_backend/heddle_build.py [OUT.so]   # default bindings/python/build/libheddle.so

which recompiles only when a source is newer than OUT.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
PKG_ROOT = HERE.parent  # bindings/python (or the unpacked sdist)
NAME = "heddle"


# ------------------------------------------------------------------ libheddle


def c_sources(root: Path = PKG_ROOT) -> Path:
    """The libheddle source tree: an sdist's native/, else the checkout's bindings/c."""
    for cand in (root / "native", root.parent / "c"):
        if (cand / "src" / "heddle.cpp").is_file():
            return cand
    raise RuntimeError(
        f"libheddle's sources are not found (looked in {root / 'native'} and {root.parent / 'c'}); "
        "build from a Heddle checkout or an sdist, or set HEDDLE_PREBUILT_LIBRARY"
    )


def _source_files(src: Path) -> List[Path]:
    files = [src / "src" / "heddle.cpp"]
    for sub in ("include", "generated"):
        d = src / sub
        if d.is_dir():
            files += sorted(p for p in d.iterdir() if p.is_file())
    return files


def compile_library(out: Path, src: Optional[Path] = None) -> None:
    """Compiles libheddle.so into `out` (written atomically)."""
    src = src or c_sources()
    cxx = os.environ.get("CXX") or "c++"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    cmd = [
        cxx, "-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden",
        "-I", str(src / "include"), "-I", str(src / "generated"),
        str(src / "src" / "heddle.cpp"), "-o", str(tmp),
    ]
    extra = os.environ.get("HEDDLE_CXXFLAGS")
    if extra:
        cmd[1:1] = extra.split()
    try:
        subprocess.run(cmd, check=True)
    except FileNotFoundError:
        raise RuntimeError(f"no C++ compiler '{cxx}' (install g++, or set CXX)") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(
            f"compiling libheddle failed ({' '.join(cmd)}: exit {e.returncode}); "
            "it needs a C++17 compiler and the FlatBuffers 2.0.8 headers (Debian: g++ libflatbuffers-dev)"
        ) from None
    os.replace(tmp, out)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: no lock
            pass
        yield


def ensure_library(out: Optional[Path] = None) -> Path:
    """libheddle.so at `out` (default bindings/python/build/libheddle.so), compiled if missing
    or older than a source. Safe when several processes ask at once."""
    out = Path(out) if out else PKG_ROOT / "build" / "libheddle.so"
    prebuilt = os.environ.get("HEDDLE_PREBUILT_LIBRARY")
    if prebuilt:
        return Path(prebuilt)
    src = c_sources()
    with _locked(out.with_name(out.name + ".lock")):
        newest = max(p.stat().st_mtime for p in _source_files(src))
        if not out.exists() or out.stat().st_mtime < newest:
            compile_library(out, src)
    return out


# ------------------------------------------------------------------ engine bundle


def engine_bundle(root: Path = PKG_ROOT) -> Optional[Path]:
    """The single-file engine to ship: $HEDDLE_ENGINE_BUNDLE, an sdist's engine/, or the checkout's dist/."""
    env = os.environ.get("HEDDLE_ENGINE_BUNDLE")
    cands = [Path(env)] if env else []
    cands += [root / "engine" / "heddle-engine.mjs", root.parent.parent / "dist" / "heddle-engine.mjs"]
    for c in cands:
        if c.is_file():
            return c
    return None


# ------------------------------------------------------------------ metadata


def _project(root: Path = PKG_ROOT) -> dict:
    text = (root / "pyproject.toml").read_text("utf-8")
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise RuntimeError("building heddle needs Python 3.11+ (tomllib) or the tomli package") from None
    return tomllib.loads(text)["project"]


def _metadata(root: Path = PKG_ROOT) -> str:
    p = _project(root)
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}"]
    if "description" in p:
        lines.append(f"Summary: {p['description']}")
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    lic = p.get("license")
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    for dep in p.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    for extra, deps in p.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for dep in deps:
            lines.append(f"Requires-Dist: {dep}; extra == \"{extra}\"")
    for c in p.get("classifiers", []):
        lines.append(f"Classifier: {c}")
    body = ""
    readme = p.get("readme")
    if isinstance(readme, str) and (root / readme).is_file():
        lines.append("Description-Content-Type: text/markdown")
        body = (root / readme).read_text("utf-8")
    return "\n".join(lines) + "\n\n" + body


def _version(root: Path = PKG_ROOT) -> str:
    return str(_project(root)["version"])


def _tag() -> str:
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    # ctypes, no CPython extension: any Python 3, this platform.
    return f"py3-none-{plat}"


# ------------------------------------------------------------------ wheels


class _Wheel:
    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.records: List[Tuple[str, str, int]] = []

    def add(self, arcname: str, data: bytes, executable: bool = False) -> None:
        info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.records.append((arcname, f"sha256={digest}", len(data)))

    def finish(self, dist_info: str) -> None:
        rec = f"{dist_info}/RECORD"
        lines = [f"{a},{h},{n}" for a, h, n in self.records] + [f"{rec},,"]
        info = zipfile.ZipInfo(rec, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = (0o644 | 0o100000) << 16
        self.zip.writestr(info, "\n".join(lines) + "\n")
        self.zip.close()


def _package_files(root: Path = PKG_ROOT) -> Dict[str, Path]:
    """heddle/** from src/, without caches and locally built extras."""
    out: Dict[str, Path] = {}
    base = root / "src"
    for p in sorted((base / NAME).rglob("*")):
        rel = p.relative_to(base)
        if not p.is_file() or "__pycache__" in rel.parts or p.suffix in (".pyc", ".so", ".mjs"):
            continue
        if rel.parts[1:2] in (("_lib",), ("_engine",)):
            continue
        out[rel.as_posix()] = p
    return out


def _dist_info(version: str) -> str:
    return f"{NAME}-{version}.dist-info"


def _wheel_meta(w: _Wheel, dist_info: str, root: Path, tag: str) -> None:
    w.add(f"{dist_info}/METADATA", _metadata(root).encode())
    w.add(f"{dist_info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: heddle_build\nRoot-Is-Purelib: false\nTag: {tag}\n".encode())
    w.add(f"{dist_info}/top_level.txt", f"{NAME}\n".encode())


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None, metadata_directory: Optional[str] = None) -> str:
    version = _version()
    tag = _tag()
    name = f"{NAME}-{version}-{tag}.whl"
    with tempfile.TemporaryDirectory(prefix="heddle-build-") as tmp:
        lib = Path(tmp) / "libheddle.so"
        prebuilt = os.environ.get("HEDDLE_PREBUILT_LIBRARY")
        if prebuilt:
            shutil.copyfile(prebuilt, lib)
        else:
            compile_library(lib)
        bundle = engine_bundle()
        if bundle is None:
            print(
                "heddle_build: warning: no engine bundle (heddle-engine.mjs) found: run `npm run build` in the "
                "checkout or set HEDDLE_ENGINE_BUNDLE; this wheel will need HEDDLE_ENGINE or HEDDLE_ENGINE_BUNDLE at run time",
                file=sys.stderr,
            )
        w = _Wheel(Path(wheel_directory) / name)
        for arc, p in _package_files().items():
            w.add(arc, p.read_bytes())
        w.add(f"{NAME}/_lib/libheddle.so", lib.read_bytes(), executable=True)
        if bundle is not None:
            w.add(f"{NAME}/_engine/heddle-engine.mjs", bundle.read_bytes())
        di = _dist_info(version)
        _wheel_meta(w, di, PKG_ROOT, tag)
        w.finish(di)
    return name


def build_editable(wheel_directory: str, config_settings: Optional[dict] = None, metadata_directory: Optional[str] = None) -> str:
    """An editable install: a .pth pointing at src/, with libheddle compiled into src/heddle/_lib/."""
    version = _version()
    tag = _tag()
    name = f"{NAME}-{version}-{tag}.whl"
    ensure_library(PKG_ROOT / "src" / NAME / "_lib" / "libheddle.so")
    w = _Wheel(Path(wheel_directory) / name)
    w.add(f"__editable__.{NAME}.pth", (str((PKG_ROOT / "src").resolve()) + "\n").encode())
    di = _dist_info(version)
    _wheel_meta(w, di, PKG_ROOT, tag)
    w.finish(di)
    return name


def _prepare_metadata(metadata_directory: str) -> str:
    di = _dist_info(_version())
    d = Path(metadata_directory) / di
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(_metadata(), "utf-8")
    (d / "WHEEL").write_text(f"Wheel-Version: 1.0\nGenerator: heddle_build\nRoot-Is-Purelib: false\nTag: {_tag()}\n", "utf-8")
    (d / "top_level.txt").write_text(f"{NAME}\n", "utf-8")
    return di


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    return _prepare_metadata(metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    return _prepare_metadata(metadata_directory)


def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[dict] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict] = None) -> List[str]:
    return []


# ------------------------------------------------------------------ sdists


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    """A self-contained source archive: the package, this backend, libheddle's sources under
    native/ and the engine bundle under engine/ (when one is built)."""
    version = _version()
    base = f"{NAME}-{version}"
    name = f"{base}.tar.gz"
    files: Dict[str, Path] = {}
    for rel in ("pyproject.toml", "README.md", "build_backend/heddle_build.py"):
        if (PKG_ROOT / rel).is_file():
            files[rel] = PKG_ROOT / rel
    for arc, p in _package_files().items():
        files[f"src/{arc}"] = p
    tests = PKG_ROOT / "tests"
    if tests.is_dir():
        for p in sorted(tests.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                files[f"tests/{p.relative_to(tests).as_posix()}"] = p
    src = c_sources()
    for p in _source_files(src):
        files[f"native/{p.relative_to(src).as_posix()}"] = p
    bundle = engine_bundle()
    if bundle is not None:
        files["engine/heddle-engine.mjs"] = bundle

    def add(tar: tarfile.TarFile, arc: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"{base}/{arc}")
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 1577836800
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(Path(sdist_directory) / name, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for arc, p in sorted(files.items()):
            add(tar, arc, p.read_bytes())
        add(tar, "PKG-INFO", _metadata().encode())
    return name


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    print(ensure_library(target))
