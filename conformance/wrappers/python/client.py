"""The Python wrapper's conformance client: runs materialized vectors through the `heddle`
package (this checkout's bindings/python/src, over libheddle) against an engine process, and
writes the arrays each op produces (docs/conformance.md, "Wrapper way in").

    client.py --engine '<engine argv as JSON>' --backend cpu REQUEST.json REPORT.json

libheddle: $HEDDLE_LIBRARY, else built (when stale) at bindings/python/build/libheddle.so.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bindings" / "python" / "src"))
sys.path.insert(0, str(REPO / "bindings" / "python" / "build_backend"))

if not os.environ.get("HEDDLE_LIBRARY"):
    import heddle_build

    os.environ["HEDDLE_LIBRARY"] = str(heddle_build.ensure_library())

import numpy as np  # noqa: E402

import heddle  # noqa: E402

DT = {"f32": np.dtype("<f4"), "i32": np.dtype("<i4"), "f64": np.dtype("<f8"), "u8": np.dtype("u1")}


def from_wire(w: Optional[Dict[str, Any]], what: str) -> np.ndarray:
    if w is None:
        raise ValueError(f"the materialized op has no {what}")
    data = base64.b64decode(w["data"])
    return np.frombuffer(data, dtype=DT[w["dtype"]]).reshape(w["shape"]).astype(DT[w["dtype"]].newbyteorder("="))


def arr(name: str, dtype: str, a: Any) -> Dict[str, Any]:
    x = np.array(a, dtype=DT[dtype], order="C")  # (ascontiguousarray would make a scalar 1-d)
    return {"name": name, "dtype": dtype, "shape": [int(d) for d in x.shape], "data": base64.b64encode(x.tobytes()).decode()}


def forward(net: heddle.Network, x: np.ndarray) -> np.ndarray:
    y = net.forward(x)
    if x.shape == net.input_shape and y.shape == net.output_shape:
        y = y.reshape((1,) + y.shape)  # a batch of one, as the core reports it
    return y


class Failure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def run_op(engine: heddle.Engine, net: heddle.Network, op: Dict[str, Any], seed: int) -> List[Dict[str, Any]]:
    spec = op["spec"]
    kind = spec["op"]
    if kind == "forward":
        return [arr("output", "f32", forward(net, from_wire(op.get("input"), "input")))]
    if kind == "grad":
        x = from_wire(op.get("input"), "input")
        g = net.grad(x, from_wire(op.get("grad_output"), "grad_output"))
        out = [arr("input.grad", "f32", g.input_grad.reshape(x.shape))]
        out += [arr(f"{p.name}.grad", "f32", g.weight_grads[p.name]) for p in net.parameters]
        return out
    if kind == "loss":
        r = net.loss(from_wire(op.get("input"), "input"), from_wire(op.get("target"), "target"), spec.get("loss", "mse"))
        return [arr("loss", "f32", np.float32(r.loss)), arr("grad", "f32", r.output_grad)]
    if kind == "train":
        inputs = from_wire(op.get("inputs"), "inputs")
        targets = from_wire(op.get("targets"), "targets")
        losses: List[float] = []
        lrs: List[float] = []

        def progress(p: heddle.TrainProgress) -> None:
            losses.append(p.loss)
            lrs.append(p.lr)

        with net.create_optimizer(spec.get("optimizer", {"type": "sgd", "lr": 0.05})) as opt:
            r = net.train(
                inputs,
                targets,
                epochs=spec.get("epochs", 2),
                batch_size=spec.get("batch_size", 2),
                loss=spec.get("loss", "mse"),
                optimizer=opt,
                schedule=spec.get("schedule"),
                clip_norm=spec.get("clip_norm"),
                shuffle=spec.get("shuffle", False),
                seed=spec.get("seed", seed),
                progress=progress,
                progress_every=1,
            )
            weights = net.get_weights()
            state = opt.state()
        out = [
            arr("epoch_losses", "f32", r.epoch_losses),
            arr("step_losses", "f32", np.array(losses, dtype=np.float32)),
            arr("step_lrs", "f64", np.array(lrs, dtype=np.float64)),
        ]
        out += [arr(p.name, "f32", weights[p.name]) for p in net.parameters]
        out.append(arr("optimizer.step", "i32", np.int32(state.step)))
        out += [arr(f"optimizer.{k}", "f32", v) for k, v in state.tensors.items()]
        return out
    if kind == "roundtrip":
        fmt = spec.get("format", "safetensors")
        x = from_wire(op.get("input"), "input")
        file = net.to_bytes(fmt)
        with engine.load(file, fmt) as again:
            resaved = again.to_bytes(fmt)
            y = forward(again, x)
        return [
            arr("file", "u8", np.frombuffer(file, dtype=np.uint8)),
            arr("file.resaved", "u8", np.frombuffer(resaved, dtype=np.uint8)),
            arr("output", "f32", y),
        ]
    raise Failure("EXCEPTION", f"unknown op {kind!r}")


def failure(e: BaseException) -> Dict[str, str]:
    if isinstance(e, heddle.HeddleError):
        return {"error": e.name, "message": e.message}
    if isinstance(e, Failure):
        return {"error": e.code, "message": str(e)}
    return {"error": "EXCEPTION", "message": "".join(traceback.format_exception(e)).strip()}


def run_vector(engine: heddle.Engine, v: Dict[str, Any]) -> Dict[str, Any]:
    t0 = time.perf_counter()
    keys = [o["key"] for o in v["ops"]]
    try:
        net = engine.create_network(v["config"] if isinstance(v["config"], str) else json.dumps(v["config"]), seed=int(v["seed"]))
        if v.get("weights"):
            try:
                net.set_weights({k: from_wire(w, f"weights.{k}") for k, w in v["weights"].items()})
            except BaseException:
                net.close()
                raise
    except BaseException as e:  # noqa: BLE001
        f = failure(e)
        if v.get("build_error") and f["error"] == "EXCEPTION":
            f = {"error": v["build_error"]["code"], "message": v["build_error"]["message"]}
        ops = [{"key": k, "error": f["error"], "message": f"building the network: {f['message']}"} for k in keys]
        return {"id": v["id"], "ms": (time.perf_counter() - t0) * 1000, "ops": ops}
    results = []
    with net:
        for op in v["ops"]:
            try:
                results.append({"key": op["key"], "arrays": run_op(engine, net, op, int(v["seed"]))})
            except BaseException as e:  # noqa: BLE001
                results.append({"key": op["key"], **failure(e)})
    return {"id": v["id"], "ms": (time.perf_counter() - t0) * 1000, "ops": results}


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--engine", required=True, help="the engine command as a JSON array")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("request")
    ap.add_argument("report")
    a = ap.parse_args(argv)
    command = json.loads(a.engine)
    req = json.loads(Path(a.request).read_text("utf-8"))
    backend = req.get("backend", a.backend)

    def start() -> heddle.Engine:
        e = heddle.Engine(command)
        if backend != "cpu":
            e.set_backend(backend)
        return e

    try:
        engine = start()
    except (heddle.BackendUnavailable, heddle.ArgumentInvalid) as e:
        report = {"runtime": "", "version": "", "backend": backend, "unavailable": f"{e.name}: {e.message}", "results": []}
        Path(a.report).write_text(json.dumps(report), "utf-8")
        return 0
    report = {"runtime": engine.runtime, "version": engine.runtime_version, "backend": backend, "results": []}
    try:
        for v in req["vectors"]:
            if not engine.alive:  # an engine that died takes one vector with it, not the rest
                engine.close()
                engine = start()
            report["results"].append(run_vector(engine, v))
    finally:
        engine.close()
    Path(a.report).write_text(json.dumps(report), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
