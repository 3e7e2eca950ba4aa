"""Heddle for Python: a client of Heddle's engine process (the deterministic TypeScript core on
Node, Deno or Bun), through libheddle with ctypes. Results are the core's bits.

    import numpy as np
    import heddle

    with heddle.Engine() as engine:                      # or Engine(runtime="bun"), Engine.connect(path)
        with engine.create_network(config, seed=7) as net:
            y = net.forward(np.zeros((2, *net.input_shape), np.float32))

Errors are exceptions, one class per ABI error code (heddle.ConfigInvalid, heddle.EngineExited,
...), all HeddleError; see docs/python.md.
"""

from ._engine import RUNTIMES, Engine, engine_command, find_bundle
from ._generated.abi import *  # noqa: F401,F403  (Status, DType, Format, the exception classes)
from ._generated.abi import __all__ as _abi_all
from ._native import library_path
from ._network import (
    Gradients,
    LossResult,
    Network,
    Optimizer,
    OptimizerState,
    Parameter,
    TrainProgress,
    TrainResult,
)

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "Network",
    "Optimizer",
    "Parameter",
    "Gradients",
    "LossResult",
    "TrainProgress",
    "TrainResult",
    "OptimizerState",
    "RUNTIMES",
    "engine_command",
    "find_bundle",
    "library_path",
    "__version__",
    *_abi_all,
]

# Exceptions read as heddle.ConfigInvalid, not heddle._generated.abi.ConfigInvalid.
for _cls in (HeddleError, EngineError, ClientError, *ERROR_CLASSES.values()):  # noqa: F405
    _cls.__module__ = __name__
del _cls
