"""Engine: a connection to a Heddle engine process (spawned over stdio, or a served unix socket)."""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _native
from ._generated import ffi
from ._generated.abi import Format, Status
from ._native import PACKAGE_DIR, client_error, lib, raise_status

__all__ = ["Engine", "engine_command", "find_bundle", "RUNTIMES"]

#: The runtimes the engine bundle runs on.
RUNTIMES = ("node", "bun", "deno")

CLIENT_NAME = "heddle-python 0.1.0"

PathLike = Union[str, "os.PathLike[str]"]


def _checkout_root() -> Optional[Path]:
    """The Heddle checkout this package runs from (src/heddle in bindings/python/src), if any."""
    root = PACKAGE_DIR.parents[3] if len(PACKAGE_DIR.parents) > 3 else None
    if root is not None and (root / "bindings" / "python" / "src" / "heddle").resolve() == PACKAGE_DIR:
        return root
    return None


def find_bundle(bundle: Optional[PathLike] = None) -> Path:
    """The engine bundle (heddle-engine.mjs): `bundle`, else $HEDDLE_ENGINE_BUNDLE, else the copy
    shipped in the package, else the checkout's dist/ (when running from a source checkout)."""
    if bundle is not None:
        cands = [Path(bundle)]
    else:
        env = os.environ.get("HEDDLE_ENGINE_BUNDLE")
        cands = [Path(env)] if env else []
        cands.append(PACKAGE_DIR / "_engine" / "heddle-engine.mjs")
        root = _checkout_root()
        if root is not None:
            cands.append(root / "dist" / "heddle-engine.mjs")
    for c in cands:
        if c.is_file():
            return c
    raise client_error(
        Status.ENGINE_START_FAILED,
        "no engine bundle (heddle-engine.mjs) at " + ", ".join(str(c) for c in cands)
        + ": pass command= or bundle=, set HEDDLE_ENGINE or HEDDLE_ENGINE_BUNDLE, or run `npm run build`",
    )


def _runtime_binary(runtime: str) -> str:
    found = shutil.which(runtime)
    if found:
        return found
    root = _checkout_root()
    if root is not None:
        local = root / "node_modules" / ".bin" / runtime
        if local.exists():
            return str(local)
    raise client_error(Status.ENGINE_START_FAILED, f"the runtime '{runtime}' is not on PATH (needed to run the engine bundle)")


def engine_command(
    command: Union[None, str, Sequence[str]] = None,
    *,
    runtime: Optional[str] = None,
    bundle: Optional[PathLike] = None,
) -> List[str]:
    """The command that starts an engine, in the order: an explicit `command` (a list, or a
    string split like a shell), else an explicit `runtime`/`bundle` (the bundle run on that
    runtime), else $HEDDLE_ENGINE (a command line), else the bundle (find_bundle) run with node."""
    if command is not None:
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not argv:
            raise client_error(Status.CLIENT_ARGUMENT_INVALID, "the engine command is empty")
        return argv
    if runtime is None and bundle is None:
        env = os.environ.get("HEDDLE_ENGINE", "").strip()
        if env:
            return shlex.split(env)
    rt = runtime or "node"
    if rt not in RUNTIMES:
        raise client_error(Status.CLIENT_ARGUMENT_INVALID, f"runtime must be one of {', '.join(RUNTIMES)}, got {rt!r}")
    path = str(find_bundle(bundle))
    binary = _runtime_binary(rt)
    return [binary, "run", "-A", path] if rt == "deno" else [binary, path]


def _options(timeout: Optional[float], client_name: Optional[str]) -> ffi.heddle_engine_options:
    o = ffi.heddle_engine_options()
    lib().heddle_engine_options_init(ctypes.byref(o))
    if timeout is not None:
        if timeout <= 0:
            raise client_error(Status.CLIENT_ARGUMENT_INVALID, f"timeout must be positive seconds, got {timeout}")
        o.timeout_ms = max(1, min(int(round(timeout * 1000)), 2**31 - 1))
    o.client_name = (client_name or CLIENT_NAME).encode()
    return o


class Engine:
    """A connection to one engine process.

    ``Engine()`` starts one (see engine_command for how it is found); ``Engine.connect(path)``
    reaches one serving a unix socket (``heddle serve --socket PATH``). Use it as a context
    manager or call close(). Networks made through it keep it alive.

    Calls from several threads are serialized by libheddle. When the engine process dies,
    the pending call and every later one raise EngineExited at once; start a new Engine.
    ``timeout`` (seconds) bounds each call: one with no answer in time raises Timeout and
    closes the engine.
    """

    def __init__(
        self,
        command: Union[None, str, Sequence[str]] = None,
        *,
        runtime: Optional[str] = None,
        bundle: Optional[PathLike] = None,
        timeout: Optional[float] = None,
        client_name: Optional[str] = None,
        _socket: Optional[PathLike] = None,
    ) -> None:
        self._ptr: Optional[int] = None
        lb = lib()
        opts = _options(timeout, client_name)
        out = ctypes.c_void_p()
        if _socket is not None:
            self.command: Optional[List[str]] = None
            self.socket_path: Optional[str] = os.fspath(_socket)
            st = lb.heddle_engine_connect(self.socket_path.encode(), ctypes.byref(opts), ctypes.byref(out))
        else:
            self.command = engine_command(command, runtime=runtime, bundle=bundle)
            self.socket_path = None
            argv = (ctypes.c_char_p * (len(self.command) + 1))(*[a.encode() for a in self.command], None)
            st = lb.heddle_engine_start(argv, ctypes.byref(opts), ctypes.byref(out))
        if st:
            raise_status(st)
        self._ptr = out.value
        self._lib = lb
        self.info: Dict[str, Any] = json.loads(self._info_json())

    @classmethod
    def spawn(
        cls,
        command: Union[None, str, Sequence[str]] = None,
        *,
        runtime: Optional[str] = None,
        bundle: Optional[PathLike] = None,
        timeout: Optional[float] = None,
        client_name: Optional[str] = None,
    ) -> "Engine":
        """Starts an engine process (the same as Engine(...))."""
        return cls(command, runtime=runtime, bundle=bundle, timeout=timeout, client_name=client_name)

    @classmethod
    def connect(cls, socket_path: PathLike, *, timeout: Optional[float] = None, client_name: Optional[str] = None) -> "Engine":
        """Connects to an engine serving a unix socket."""
        return cls(timeout=timeout, client_name=client_name, _socket=socket_path)

    # -------------------------------------------------------------- state

    def _handle(self) -> int:
        if self._ptr is None:
            raise client_error(Status.CLOSED, "the engine was closed by this client")
        return self._ptr

    def _info_json(self) -> str:
        n = ctypes.c_size_t()
        buf = ctypes.create_string_buffer(4096)
        st = self._lib.heddle_engine_info(self._handle(), buf, len(buf), ctypes.byref(n))
        if st == Status.BUFFER_TOO_SMALL:
            buf = ctypes.create_string_buffer(n.value + 1)
            st = self._lib.heddle_engine_info(self._handle(), buf, len(buf), ctypes.byref(n))
        if st:
            raise_status(st)
        return buf.raw[: n.value].decode("utf-8")

    @property
    def runtime(self) -> str:
        """The runtime the engine runs on: "node", "deno" or "bun"."""
        return str(self.info.get("runtime", ""))

    @property
    def runtime_version(self) -> str:
        return str(self.info.get("runtime_version", ""))

    @property
    def engine_version(self) -> str:
        return str(self.info.get("engine_version", ""))

    @property
    def abi_version(self) -> str:
        """The engine's ABI version (semver)."""
        return str(self.info.get("abi_version", ""))

    @property
    def pid(self) -> Optional[int]:
        """The started engine's process id (None for a socket connection or after close)."""
        if self._ptr is None:
            return None
        p = int(self._lib.heddle_engine_pid(self._ptr))
        return p if p > 0 else None

    @property
    def alive(self) -> bool:
        """Whether the connection is usable (False after close or once the engine exited)."""
        return self._ptr is not None and bool(self._lib.heddle_engine_alive(self._ptr))

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def set_backend(self, name: str) -> None:
        """Chooses the backend ("cpu", "webgpu") for this connection's later calls."""
        st = self._lib.heddle_engine_set_backend(self._handle(), name.encode())
        if st:
            raise_status(st)

    # -------------------------------------------------------------- networks

    def create_network(self, config: Union[str, Mapping[str, Any]], seed: int = 0) -> "Network":
        """Builds a network from a config (a dict, or its JSON text); `seed` initializes the weights."""
        text = config if isinstance(config, str) else json.dumps(config)
        if not (0 <= int(seed) < 2**64):
            raise client_error(Status.CLIENT_ARGUMENT_INVALID, f"seed must be in [0, 2^64), got {seed}")
        out = ctypes.c_void_p()
        st = self._lib.heddle_network_create(self._handle(), text.encode(), int(seed), ctypes.byref(out))
        if st:
            raise_status(st)
        return Network._wrap(self, out.value)

    def load(
        self,
        source: Union[bytes, bytearray, memoryview, PathLike],
        format: Union[None, str, Format] = None,
        *,
        config: Union[None, str, Mapping[str, Any]] = None,
    ) -> "Network":
        """Builds a network from saved bytes or a file (JSON or safetensors). The format is
        `format` ("json", "safetensors"), else the file's suffix, else sniffed from the bytes.
        `config` (safetensors only) overrides the stored config."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            fmt = _format(format) if format is not None else _sniff(data)
        else:
            path = Path(os.fspath(source))
            data = path.read_bytes()
            fmt = _format(format) if format is not None else _format_of_path(path, data)
        cfg = None
        if config is not None:
            cfg = (config if isinstance(config, str) else json.dumps(config)).encode()
        buf = ctypes.c_char_p(data)
        out = ctypes.c_void_p()
        st = self._lib.heddle_network_load(self._handle(), int(fmt), ctypes.cast(buf, ctypes.c_void_p), len(data), cfg, ctypes.byref(out))
        if st:
            raise_status(st)
        return Network._wrap(self, out.value)

    # -------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Ends the connection (a started engine exits). Networks of this engine then raise
        Closed. Safe to call twice."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            self._lib.heddle_engine_close(ptr)

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<heddle.Engine closed>"
        where = f"socket {self.socket_path}" if self.socket_path else f"pid {self.pid}"
        return f"<heddle.Engine {self.runtime} {self.runtime_version}, ABI {self.abi_version}, {where}{'' if self.alive else ', exited'}>"


def _format(fmt: Union[str, Format, int]) -> Format:
    if isinstance(fmt, Format):
        return fmt
    if isinstance(fmt, int):
        return Format(fmt)
    try:
        return Format[str(fmt).upper()]
    except KeyError:
        raise client_error(Status.CLIENT_ARGUMENT_INVALID, f"format must be 'json' or 'safetensors', got {fmt!r}") from None


def _sniff(data: bytes) -> Format:
    return Format.JSON if data.lstrip()[:1] == b"{" else Format.SAFETENSORS


def _format_of_path(path: Path, data: bytes) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return Format.JSON
    if suffix == ".safetensors":
        return Format.SAFETENSORS
    return _sniff(data)


from ._network import Network  # noqa: E402  (Network needs Engine's module loaded first)
