"""Network and Optimizer: engine objects reached through handles, with numpy in and out."""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np

from ._generated import ffi
from ._generated.abi import DType, Format, Status
from ._native import client_error, raise_status

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Network", "Optimizer", "Parameter", "Gradients", "LossResult", "TrainProgress", "TrainResult", "OptimizerState"]

_F32 = np.dtype(np.float32)
_NP_DTYPES = {np.dtype(np.float32): DType.F32, np.dtype(np.int32): DType.I32, np.dtype(np.int64): DType.I64}


class Parameter(NamedTuple):
    """A weight tensor of a network: its full name (e.g. "layers.0.weight") and shape."""

    name: str
    shape: Tuple[int, ...]


class Gradients(NamedTuple):
    """What grad() returns: dLoss/dInput, every parameter's gradient by name (in parameter
    order; empty when not asked for), and the loss (when grad ran from a loss)."""

    input_grad: np.ndarray
    weight_grads: Dict[str, np.ndarray]
    loss: Optional[float]


class LossResult(NamedTuple):
    """A loss value and its gradient with respect to the network's output."""

    loss: float
    output_grad: np.ndarray


class TrainProgress(NamedTuple):
    """One progress frame of train(): after `step` (1..total_steps) of epoch `epoch` (from 0)."""

    epoch: int
    step: int
    steps_per_epoch: int
    total_steps: int
    loss: float
    lr: float


class TrainResult(NamedTuple):
    """What train() returns: the last epoch's loss, the steps taken, and every epoch's loss
    (the sample-weighted mean of its batch losses, float32)."""

    final_loss: float
    steps: int
    epoch_losses: np.ndarray


class OptimizerState(NamedTuple):
    """An optimizer's steps so far and its state tensors by torch-style name ("layers.0.weight.exp_avg")."""

    step: int
    tensors: Dict[str, np.ndarray]


ProgressCallback = Callable[[TrainProgress], Any]
ArrayLike = Any


_addressof = ctypes.addressof
_from_buffer = ctypes.c_char.from_buffer


def _address(a: np.ndarray) -> int:
    """The data address of a C-contiguous array (faster than a.ctypes.data for writable ones)."""
    try:
        return _addressof(_from_buffer(a))
    except (TypeError, ValueError):  # read-only or empty
        return int(a.ctypes.data)


def _shape(ptr: Any, rank: int) -> Tuple[int, ...]:
    return tuple(int(ptr[i]) for i in range(rank))


class _Tensor:
    """A heddle_tensor over a contiguous numpy array (kept alive with it)."""

    __slots__ = ("array", "shape", "c")

    def __init__(self, array: np.ndarray) -> None:
        dtype = _NP_DTYPES.get(array.dtype)
        if dtype is None:
            array = np.asarray(array, dtype=np.int64 if array.dtype.kind in "iu" else np.float32, order="C")
            dtype = _NP_DTYPES[array.dtype]
        else:
            array = np.asarray(array, order="C")
        self.array = array
        self.shape = (ctypes.c_int64 * max(1, array.ndim))(*array.shape)
        self.c = ffi.heddle_tensor(int(dtype), array.ndim, ctypes.addressof(self.shape), array.ctypes.data, array.nbytes)


def _as_array(x: ArrayLike) -> np.ndarray:
    """An input as an array: a numpy integer array is kept (ids, class indices); anything
    else becomes float32 (so a list of Python ints is float data)."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        return x
    return np.asarray(x, dtype=np.float32, order="C")


def _json_arg(value: Union[None, str, Mapping[str, Any]]) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, str):
        # a bare name ("adamw") or JSON text
        s = value.strip()
        return (s if s[:1] in ('{', '"', '[') else json.dumps(s)).encode()
    return json.dumps(value).encode()


class Network:
    """A network living in an engine. Use it as a context manager, or call close(), to free it
    in the engine (garbage collection frees it too). After close(), calls raise Closed; after
    the engine is closed they raise Closed too, and EngineExited once the engine died.

    Arrays in: float arrays are sent as float32 (integer arrays as ids, for networks that
    read them), shaped [batch, *input_shape] (or input_shape for one sample). Arrays out:
    float32, [batch, *output_shape].
    """

    engine: "Engine"
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    input_size: int
    output_size: int
    parameter_count: int
    parameters: List[Parameter]

    def __init__(self) -> None:  # pragma: no cover - made by Engine
        raise TypeError("networks are made by Engine.create_network() or Engine.load()")

    @classmethod
    def _wrap(cls, engine: "Engine", ptr: int) -> "Network":
        n = cls.__new__(cls)
        lb = engine._lib
        n.engine = engine
        n._lib = lb
        n._ptr = ptr
        n._forward = lb.heddle_network_forward
        n.input_shape = _shape(lb.heddle_network_input_shape(ptr), lb.heddle_network_input_rank(ptr))
        n.output_shape = _shape(lb.heddle_network_output_shape(ptr), lb.heddle_network_output_rank(ptr))
        n.input_size = int(lb.heddle_network_input_size(ptr))
        n.output_size = int(lb.heddle_network_output_size(ptr))
        n.parameter_count = int(lb.heddle_network_parameter_count(ptr))
        params = []
        for i in range(int(lb.heddle_network_parameter_tensors(ptr))):
            name = lb.heddle_network_parameter_name(ptr, i).decode()
            params.append(Parameter(name, _shape(lb.heddle_network_parameter_shape(ptr, i), lb.heddle_network_parameter_rank(ptr, i))))
        n.parameters = params
        return n

    def _handle(self) -> int:
        ptr = self._ptr
        if ptr is None:
            raise client_error(Status.CLOSED, "the network was closed by this client")
        return ptr

    def _batch(self, shape: Tuple[int, ...]) -> Optional[Tuple[int, bool]]:
        """(batch, single sample) when `shape` is the network's input shape with or without a batch dim."""
        if shape[1:] == self.input_shape:
            return shape[0], False
        if shape == self.input_shape:
            return 1, True
        return None

    def _split(self, flat: np.ndarray) -> Dict[str, np.ndarray]:
        out: Dict[str, np.ndarray] = {}
        o = 0
        for p in self.parameters:
            k = int(np.prod(p.shape, dtype=np.int64))
            out[p.name] = flat[o : o + k].reshape(p.shape)
            o += k
        return out

    # -------------------------------------------------------------- inference

    def forward(self, x: ArrayLike) -> np.ndarray:
        """Runs the network on `x`; returns float32 [batch, *output_shape] (no batch dim if `x` had none)."""
        ptr = self._ptr
        if ptr is None:
            self._handle()
        if type(x) is not np.ndarray or x.dtype is not _F32 or not x.flags.c_contiguous:
            x = _as_array(x)
            if x.dtype.kind in "iu":
                return self._forward_tensor(x)
        b = self._batch(x.shape)
        if b is None:
            return self._forward_tensor(x)  # the engine names the shape problem
        batch, single = b
        y = np.empty((batch,) + self.output_shape, _F32)
        st = self._forward(ptr, _address(x), batch, _address(y), y.size)
        if st:
            raise_status(st)
        return y[0] if single else y

    def _forward_tensor(self, x: np.ndarray) -> np.ndarray:
        t = _Tensor(x)
        b = self._batch(x.shape)
        batch = b[0] if b else (x.shape[0] if x.ndim else 1)
        cap = max(batch, 1) * self.output_size
        y = np.empty(cap, _F32)
        count = ctypes.c_size_t()
        st = self._lib.heddle_network_forward_tensor(self._handle(), ctypes.byref(t.c), y.ctypes.data, cap, ctypes.byref(count))
        if st == Status.BUFFER_TOO_SMALL and count.value > cap:
            y = np.empty(count.value, _F32)
            st = self._lib.heddle_network_forward_tensor(self._handle(), ctypes.byref(t.c), y.ctypes.data, count.value, ctypes.byref(count))
        if st:
            raise_status(st)
        y = y[: count.value]
        if self.output_size and count.value % self.output_size == 0:
            y = y.reshape((count.value // self.output_size,) + self.output_shape)
            if b is not None and b[1]:
                return y[0]
        return y

    def forward_pipelined(self, xs: ArrayLike) -> np.ndarray:
        """`count` forward calls sent back to back: `xs` is [count, batch, *input_shape] (float32);
        returns [count, batch, *output_shape]. All are answered; the first error is raised."""
        x = np.asarray(xs, dtype=np.float32, order="C")
        if x.ndim < 2 or x.shape[2:] != self.input_shape:
            raise client_error(Status.CLIENT_ARGUMENT_INVALID, f"forward_pipelined takes [count, batch, *{list(self.input_shape)}], got {list(x.shape)}")
        count, batch = x.shape[0], x.shape[1]
        y = np.empty((count, batch) + self.output_shape, _F32)
        st = self._lib.heddle_network_forward_pipelined(self._handle(), x.ctypes.data, batch, count, y.ctypes.data, y.size)
        if st:
            raise_status(st)
        return y

    # -------------------------------------------------------------- gradients

    def _grad_input(self, x: ArrayLike, what: str) -> Tuple[np.ndarray, int, bool]:
        a = np.asarray(x, dtype=np.float32, order="C")
        b = self._batch(a.shape)
        if b is None:
            raise client_error(Status.CLIENT_ARGUMENT_INVALID, f"{what}: input shape {list(a.shape)} is not [batch, *{list(self.input_shape)}]")
        return a, b[0], b[1]

    def grad(
        self,
        x: ArrayLike,
        grad_output: Optional[ArrayLike] = None,
        *,
        target: Optional[ArrayLike] = None,
        loss: Optional[str] = None,
        weight_grads: bool = True,
    ) -> Gradients:
        """The backward pass, from `grad_output` (dLoss/dOutput, shaped like the output) or from
        a loss ("mse", "cross_entropy") against `target`. Returns the input gradient and, unless
        weight_grads=False, every parameter's gradient; the engine keeps the weight gradients
        for Optimizer.step()."""
        xa, batch, single = self._grad_input(x, "grad")
        ig = np.empty((batch,) + self.input_shape, _F32)
        wg = np.empty(self.parameter_count, _F32) if weight_grads else None
        wptr, wcap = (wg.ctypes.data, wg.size) if wg is not None else (None, 0)
        loss_value: Optional[float] = None
        if target is not None or loss is not None:
            if grad_output is not None:
                raise client_error(Status.CLIENT_ARGUMENT_INVALID, "grad takes grad_output, or target and loss, not both")
            if target is None:
                raise client_error(Status.CLIENT_ARGUMENT_INVALID, "grad with a loss needs target")
            t = _Tensor(_as_array(target))
            lv = ctypes.c_float()
            st = self._lib.heddle_network_grad_loss(
                self._handle(), xa.ctypes.data, batch, ctypes.byref(t.c), (loss or "mse").encode(), ctypes.byref(lv), ig.ctypes.data, ig.size, wptr, wcap
            )
            if st:
                raise_status(st)
            loss_value = float(lv.value)
        else:
            if grad_output is None:
                raise client_error(Status.CLIENT_ARGUMENT_INVALID, "grad needs grad_output, or target (and loss)")
            dy = np.asarray(grad_output, dtype=np.float32, order="C")
            if dy.size != batch * self.output_size:
                raise client_error(Status.CLIENT_ARGUMENT_INVALID, f"grad_output has {dy.size} values, the output {batch * self.output_size}")
            st = self._lib.heddle_network_grad(self._handle(), xa.ctypes.data, batch, dy.ctypes.data, ig.ctypes.data, ig.size, wptr, wcap)
            if st:
                raise_status(st)
        return Gradients(ig[0] if single else ig, self._split(wg) if wg is not None else {}, loss_value)

    def loss(self, x: ArrayLike, target: ArrayLike, loss: str = "mse") -> LossResult:
        """A loss ("mse", "cross_entropy") of the output on `x` against `target` (mse: shaped like
        the output; cross_entropy: class indices as integers, or probabilities), and dLoss/dOutput.
        Changes nothing in the network."""
        xa, batch, _ = self._grad_input(x, "loss")
        t = _Tensor(_as_array(target))
        lv = ctypes.c_float()
        g = np.empty((batch,) + self.output_shape, _F32)
        st = self._lib.heddle_network_loss(self._handle(), xa.ctypes.data, batch, ctypes.byref(t.c), loss.encode(), ctypes.byref(lv), g.ctypes.data, g.size)
        if st:
            raise_status(st)
        return LossResult(float(lv.value), g)

    # -------------------------------------------------------------- training

    def train(
        self,
        inputs: ArrayLike,
        targets: ArrayLike,
        *,
        epochs: int = 1,
        batch_size: int = 1,
        loss: str = "mse",
        optimizer: Union[str, Mapping[str, Any], "Optimizer"] = "adamw",
        schedule: Union[None, str, Mapping[str, Any]] = None,
        clip_norm: Optional[float] = None,
        shuffle: bool = False,
        seed: int = 0,
        progress: Optional[ProgressCallback] = None,
        progress_every: int = 1,
    ) -> TrainResult:
        """Trains on `inputs` [N, *input_shape] and `targets` (mse: [N, *output_shape];
        cross_entropy: class indices or probabilities). `optimizer` is a spec ("adamw",
        {"type": "sgd", "lr": 0.1}) or an Optimizer of this network (its state carries on);
        `schedule` a learning-rate schedule spec. `progress` is called with a TrainProgress
        every `progress_every` steps (and after the last); if it raises, it is not called
        again and the exception is raised when training ends."""
        xin = _Tensor(_as_array(inputs))
        tgt = _Tensor(_as_array(targets))
        o = ffi.heddle_train_options()
        self._lib.heddle_train_options_init(ctypes.byref(o))
        o.epochs = int(epochs)
        o.batch_size = int(batch_size)
        loss_b = loss.encode()
        o.loss = loss_b
        keep: List[Any] = [loss_b]
        if isinstance(optimizer, Optimizer):
            o.optimizer = optimizer._handle()
        else:
            spec = _json_arg(optimizer)
            keep.append(spec)
            o.optimizer_json = spec
        if schedule is not None:
            sched = _json_arg(schedule)
            keep.append(sched)
            o.schedule_json = sched
        o.clip_norm = float(clip_norm) if clip_norm else 0.0
        o.shuffle = 1 if shuffle else 0
        o.seed = int(seed)
        o.progress_every = int(progress_every) if progress is not None else 0
        losses = np.zeros(max(int(epochs), 0), _F32)
        o.epoch_losses = losses.ctypes.data if losses.size else None
        o.epoch_losses_cap = losses.size
        failure: List[BaseException] = []

        def on_progress(p: Any, _user: Any) -> None:
            if failure:
                return
            c = p.contents
            try:
                progress(TrainProgress(int(c.epoch), int(c.step), int(c.steps_per_epoch), int(c.total_steps), float(c.loss), float(c.lr)))  # type: ignore[misc]
            except BaseException as e:  # noqa: BLE001 - re-raised after the C call returns
                failure.append(e)

        cb = ffi.heddle_progress_fn(on_progress) if progress is not None else ffi.heddle_progress_fn()
        r = ffi.heddle_train_result()
        st = self._lib.heddle_network_train(self._handle(), ctypes.byref(xin.c), ctypes.byref(tgt.c), ctypes.byref(o), cb, None, ctypes.byref(r))
        if failure:
            raise failure[0]
        if st:
            raise_status(st)
        return TrainResult(float(r.final_loss), int(r.steps), losses[: int(r.epochs)].copy())

    def create_optimizer(self, spec: Union[str, Mapping[str, Any]] = "adamw") -> "Optimizer":
        """An optimizer over this network's parameters, e.g. {"type": "sgd", "lr": 0.1, "momentum": 0.9}."""
        s = _json_arg(spec)
        out = ctypes.c_void_p()
        st = self._lib.heddle_optimizer_create(self._handle(), s, ctypes.byref(out))
        if st:
            raise_status(st)
        return Optimizer(self, out.value)

    # -------------------------------------------------------------- weights

    def get_weights(self) -> Dict[str, np.ndarray]:
        """Every weight by name, in parameter order (float32 copies)."""
        flat = np.empty(self.parameter_count, _F32)
        st = self._lib.heddle_network_get_weights(self._handle(), flat.ctypes.data, flat.size)
        if st:
            raise_status(st)
        return self._split(flat)

    def set_weights(self, weights: Mapping[str, ArrayLike], complete: bool = False) -> None:
        """Replaces weights by name (float32, each parameter's exact shape, finite). All or
        nothing; with complete=True every parameter must be given."""
        items = list(weights.items())
        names = (ctypes.c_char_p * max(1, len(items)))(*[k.encode() for k, _ in items])
        ts = [_Tensor(np.asarray(v, dtype=np.float32, order="C")) for _, v in items]
        arr = (ffi.heddle_tensor * max(1, len(ts)))(*[t.c for t in ts])
        st = self._lib.heddle_network_set_weights(self._handle(), names, arr, len(items), 1 if complete else 0)
        if st:
            raise_status(st)

    def morph_dtype(self, dtype: Union[str, DType]) -> None:
        """Converts the weights' dtype (only F32, a no-op, until the dtype work lands; else Unsupported)."""
        d = dtype if isinstance(dtype, DType) else DType[str(dtype).upper()]
        st = self._lib.heddle_network_morph_dtype(self._handle(), int(d))
        if st:
            raise_status(st)

    # -------------------------------------------------------------- persistence

    def to_bytes(self, format: Union[str, Format] = Format.SAFETENSORS) -> bytes:
        """The network (config and weights) as safetensors (default) or JSON bytes."""
        from ._engine import _format

        fmt = _format(format)
        n = ctypes.c_size_t()
        st = self._lib.heddle_network_save(self._handle(), int(fmt), None, 0, ctypes.byref(n))
        if st != Status.BUFFER_TOO_SMALL:
            if st:
                raise_status(st)
            return b""
        buf = ctypes.create_string_buffer(max(1, n.value))
        st = self._lib.heddle_network_save(self._handle(), int(fmt), buf, n.value, ctypes.byref(n))
        if st:
            raise_status(st)
        return buf.raw[: n.value]

    def save(self, path: Union[str, "os.PathLike[str]"], format: Union[None, str, Format] = None) -> None:
        """Writes the network to a file: `format`, else by suffix (.json, .safetensors)."""
        from ._engine import _format

        p = Path(os.fspath(path))
        if format is None:
            suffix = p.suffix.lower()
            if suffix not in (".json", ".safetensors"):
                raise client_error(Status.CLIENT_ARGUMENT_INVALID, f"say format= for {p} (its suffix is not .json or .safetensors)")
            format = suffix[1:]
        p.write_bytes(self.to_bytes(_format(format)))

    def describe(self) -> Dict[str, Any]:
        """The blueprint (what `heddle info --json` prints)."""
        n = ctypes.c_size_t()
        st = self._lib.heddle_network_describe(self._handle(), None, 0, ctypes.byref(n))
        if st and st != Status.BUFFER_TOO_SMALL:
            raise_status(st)
        buf = ctypes.create_string_buffer(n.value + 1)
        st = self._lib.heddle_network_describe(self._handle(), buf, len(buf), ctypes.byref(n))
        if st:
            raise_status(st)
        return json.loads(buf.raw[: n.value].decode("utf-8"))

    # -------------------------------------------------------------- lifetime

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Frees the network in the engine (and its optimizers). Safe to call twice. Raises
        only if the engine answered the free with an error."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            st = self._lib.heddle_network_free(ptr)
            if st and st not in (Status.ENGINE_EXITED, Status.CLOSED, Status.TIMEOUT):
                raise_status(st)

    def __enter__(self) -> "Network":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            ptr, self._ptr = self._ptr, None
            if ptr is not None:
                self._lib.heddle_network_free(ptr)
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self) -> str:
        state = "closed" if self._ptr is None else f"{self.parameter_count} parameters"
        return f"<heddle.Network {list(self.input_shape)} -> {list(self.output_shape)}, {state}>"


class Optimizer:
    """An optimizer in the engine, over one network's parameters. step() applies the last
    grad() call's weight gradients; train(optimizer=...) carries its state on."""

    def __init__(self, network: Network, ptr: int) -> None:
        self.network = network
        self._lib = network._lib
        self._ptr: Optional[int] = ptr

    def _handle(self) -> int:
        if self._ptr is None:
            raise client_error(Status.CLOSED, "the optimizer was closed by this client")
        return self._ptr

    def step(self, lr: Optional[float] = None) -> int:
        """One update from the network's weight gradients (lr: override the spec's). Returns the steps so far."""
        steps = ctypes.c_uint64()
        st = self._lib.heddle_optimizer_step(self._handle(), float("nan") if lr is None else float(lr), ctypes.byref(steps))
        if st:
            raise_status(st)
        return int(steps.value)

    def state(self) -> OptimizerState:
        """The steps so far and the state tensors (none before the first step)."""
        step = ctypes.c_uint64()
        count = ctypes.c_size_t()
        ptr = self._handle()
        st = self._lib.heddle_optimizer_state(ptr, ctypes.byref(step), ctypes.byref(count))
        if st:
            raise_status(st)
        tensors: Dict[str, np.ndarray] = {}
        for i in range(count.value):
            name = self._lib.heddle_optimizer_state_name(ptr, i).decode()
            rank = ctypes.c_size_t()
            shp = self._lib.heddle_optimizer_state_shape(ptr, i, ctypes.byref(rank))
            n = ctypes.c_size_t()
            data = self._lib.heddle_optimizer_state_data(ptr, i, ctypes.byref(n))
            shape = _shape(shp, rank.value) if rank.value else ()
            arr = np.ctypeslib.as_array(data, shape=(n.value,)).copy() if n.value else np.empty(0, _F32)
            tensors[name] = arr.reshape(shape)
        return OptimizerState(int(step.value), tensors)

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Frees the optimizer in the engine. Safe to call twice."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            st = self._lib.heddle_optimizer_free(ptr)
            if st and st not in (Status.ENGINE_EXITED, Status.CLOSED, Status.TIMEOUT):
                raise_status(st)

    def __enter__(self) -> "Optimizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            ptr, self._ptr = self._ptr, None
            if ptr is not None:
                self._lib.heddle_optimizer_free(ptr)
        except Exception:
            pass
