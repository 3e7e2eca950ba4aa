"""Loads libheddle and turns its status codes into exceptions.

libheddle is found at ``$HEDDLE_LIBRARY`` if set, else ``heddle/_lib/libheddle.so`` (what a
wheel ships, or what an editable install compiles). It is loaded on first use, so
``import heddle`` works without it (the enums and exceptions need no library).
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import NoReturn, Optional

from ._generated import ffi
from ._generated.abi import ClientError, Status, error_for

PACKAGE_DIR = Path(__file__).resolve().parent

_lib: Optional[ctypes.CDLL] = None
_lock = threading.Lock()


def library_path() -> Path:
    """Where libheddle is loaded from (it need not exist yet)."""
    env = os.environ.get("HEDDLE_LIBRARY")
    if env:
        return Path(env)
    return PACKAGE_DIR / "_lib" / "libheddle.so"


def lib() -> ctypes.CDLL:
    """libheddle, loaded and declared (every prototype from the generated ffi module)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            path = library_path()
            if not path.is_file():
                raise error_for(
                    Status.ENGINE_START_FAILED,
                    f"libheddle is not at {path}: install the package (pip install ./bindings/python), "
                    "or set HEDDLE_LIBRARY to a built libheddle.so "
                    "(python3 bindings/python/build_backend/heddle_build.py builds one)",
                )
            _lib = ffi.bind(ctypes.CDLL(str(path)))
    return _lib


def last_message(status: int) -> str:
    """The message of the last failed call on this thread, without its "NAME: " prefix."""
    lb = lib()
    raw = lb.heddle_last_error() or b""
    text = raw.decode("utf-8", "replace")
    name = (lb.heddle_status_name(status) or b"").decode()
    prefix = f"{name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def raise_status(status: int) -> NoReturn:
    """Raises the exception of a failed libheddle call (call right after it, on the same thread)."""
    raise error_for(status, last_message(status))


def client_error(status: Status, message: str) -> ClientError:
    err = error_for(status, message)
    assert isinstance(err, ClientError)
    return err
