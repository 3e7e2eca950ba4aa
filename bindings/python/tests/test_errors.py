"""Errors arrive as the exception class of their ABI code, with the engine's message; the
connection keeps serving after each; a dead engine is reported at once, and a new one works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import heddle
from conftest import engine_argv

DENSE = {"layers": [{"type": "dense", "input_height": 4, "output_height": 2}]}


def test_every_error_code_has_its_class() -> None:
    for st in heddle.Status:
        if st == heddle.Status.OK:
            continue
        err = heddle.error_for(st, "m")
        assert type(err) is heddle.ERROR_CLASSES[st]
        assert err.code == st and err.name == st.name and err.message == "m"
        assert str(err) == f"{st.name}: m"
        assert isinstance(err, heddle.ClientError if st >= 600 else heddle.EngineError)
        assert isinstance(err, heddle.HeddleError)
        assert err.doc
    assert heddle.ConfigInvalid.code == 400 and heddle.EngineExited.code == 600
    assert type(heddle.ConfigInvalid("x")).__module__ == "heddle"


def test_an_unknown_code_is_still_an_error_of_that_number() -> None:
    e = heddle.error_for(450, "new")
    assert type(e) is heddle.EngineError and e.code == 450 and e.name == "ERROR_450"
    c = heddle.error_for(650, "new")
    assert type(c) is heddle.ClientError and c.code == 650


def test_bad_input_gets_precise_errors_and_the_connection_keeps_serving(engine: heddle.Engine) -> None:
    with pytest.raises(heddle.ConfigInvalid) as ei:
        engine.create_network({"layers": [{"type": "dense", "input_height": 4, "output_height": 0}]})
    assert "layers[0]" in ei.value.message and "output_height" in ei.value.message
    with pytest.raises(heddle.ConfigInvalid):
        engine.create_network("{not json")
    with engine.create_network(DENSE, seed=1) as net:
        with pytest.raises(heddle.ShapeMismatch):
            net.forward(np.zeros((2, 5), np.float32))
        with pytest.raises(heddle.InputInvalid):
            net.forward(np.array([[1, np.nan, 0, 0]], np.float32))
        with pytest.raises(heddle.DtypeInvalid):
            net.forward(np.zeros((1, 4), np.int32))  # ids into a network that takes floats
        with pytest.raises(heddle.ConfigInvalid):
            net.loss(np.zeros((1, 4)), np.zeros((1, 2)), "hinge")
        with pytest.raises(heddle.ConfigInvalid):
            net.create_optimizer({"type": "lion"})
        with pytest.raises(heddle.WeightsInvalid):
            net.set_weights({"layers.0.weight": np.zeros((3, 3))})
        with pytest.raises(heddle.WeightsInvalid):
            net.set_weights({"layers.9.weight": np.zeros((2, 4))})
        with pytest.raises(heddle.Unsupported):
            net.morph_dtype("F16")
        net.morph_dtype(heddle.DType.F32)
        with pytest.raises(heddle.ClientArgumentInvalid):
            net.grad(np.zeros((1, 4)))
        with pytest.raises(heddle.FormatInvalid):
            engine.load(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header", "safetensors")
        with pytest.raises(heddle.FormatInvalid):
            engine.load(b'{"format":"heddle-network"', "json")
        # set_backend("webgpu") depends on the adapters the engine finds: test_webgpu.py
        with pytest.raises(heddle.ArgumentInvalid):
            engine.set_backend("tpu")
        engine.set_backend("cpu")
        # still serving, same network
        assert net.forward(np.ones((1, 4), np.float32)).shape == (1, 2)
    assert engine.alive


def test_a_closed_network_or_engine_raises_closed(engine: heddle.Engine) -> None:
    net = engine.create_network(DENSE, seed=1)
    opt = net.create_optimizer("sgd")
    other = engine.create_network(DENSE, seed=2)
    net.close()
    net.close()  # twice is fine
    assert net.closed
    for call in (lambda: net.forward(np.ones((1, 4), np.float32)), lambda: net.to_bytes(), lambda: net.get_weights()):
        with pytest.raises(heddle.Closed):
            call()
    # the optimizer was freed with its network in the engine: its handle is stale there
    with pytest.raises(heddle.HandleStale):
        opt.step()
    opt.close()
    engine.close()
    with pytest.raises(heddle.Closed):
        other.forward(np.ones((1, 4), np.float32))
    with pytest.raises(heddle.Closed):
        engine.create_network(DENSE)
    other.close()
    assert not engine.alive and engine.pid is None


def test_a_killed_engine_raises_engine_exited_at_once_and_a_new_engine_works(runtime: str) -> None:
    e = heddle.Engine(engine_argv(runtime))
    net = e.create_network(DENSE, seed=1)
    x = np.ones((1, 4), np.float32)
    net.forward(x)
    pid = e.pid
    assert pid is not None and pid > 0
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(heddle.EngineExited) as ei:
        net.forward(x)
    assert time.monotonic() - t0 < 5
    assert "signal 9" in ei.value.message and "start a new engine" in ei.value.message
    assert not e.alive
    with pytest.raises(heddle.EngineExited):  # later calls too
        e.create_network(DENSE)
    net.close()  # safe after death
    e.close()
    with heddle.Engine(engine_argv(runtime)) as again:
        with again.create_network(DENSE, seed=1) as n2:
            assert n2.forward(x).shape == (1, 2)


def test_an_engine_killed_during_a_long_call_is_reported_in_bounded_time(node_engine: heddle.Engine) -> None:
    big = {"layers": [{"type": "dense", "input_height": 256, "output_height": 256, "activation": "tanh"}] * 4}
    net = node_engine.create_network(big, seed=1)
    pid = node_engine.pid
    killer = subprocess.Popen([sys.executable, "-c", f"import os,signal,time; time.sleep(0.5); os.kill({pid}, signal.SIGKILL)"])
    t0 = time.monotonic()
    with pytest.raises(heddle.EngineExited):
        net.train(np.zeros((20000, 256), np.float32), np.zeros((20000, 256), np.float32), epochs=1000, batch_size=8)
    assert time.monotonic() - t0 < 10
    killer.wait()


def test_start_failures() -> None:
    with pytest.raises(heddle.EngineStartFailed) as ei:
        heddle.Engine(["/nonexistent/heddle-engine"])
    assert "/nonexistent/heddle-engine" in ei.value.message
    with pytest.raises(heddle.EngineStartFailed):
        heddle.Engine([sys.executable, "-c", "pass"])  # exits without a handshake
    with pytest.raises(heddle.ClientArgumentInvalid):
        heddle.Engine(runtime="python")
    with pytest.raises(heddle.EngineStartFailed) as ei:
        heddle.Engine(bundle="/nonexistent/heddle-engine.mjs")
    assert "/nonexistent/heddle-engine.mjs" in ei.value.message
    with pytest.raises(heddle.ConnectFailed):
        heddle.Engine.connect("/nonexistent/heddle.sock")


def test_a_hung_engine_times_out() -> None:
    t0 = time.monotonic()
    with pytest.raises(heddle.Timeout):
        heddle.Engine(["sleep", "30"], timeout=0.3)
    assert time.monotonic() - t0 < 5


def test_a_progress_callback_that_raises_stops_being_called_and_its_error_is_raised(engine: heddle.Engine) -> None:
    calls = []

    def progress(p: heddle.TrainProgress) -> None:
        calls.append(p.step)
        raise KeyError("stop")

    with engine.create_network(DENSE, seed=1) as net:
        with pytest.raises(KeyError):
            net.train(np.zeros((8, 4), np.float32), np.zeros((8, 2), np.float32), epochs=2, batch_size=2, optimizer="sgd", progress=progress)
        assert calls == [1]
        # the connection is fine afterwards
        assert net.forward(np.zeros((1, 4), np.float32)).shape == (1, 2)
