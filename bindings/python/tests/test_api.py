"""The idiomatic API: engine discovery and info, networks as context managers, numpy in and
out, save/load to bytes and files, weights, optimizers, the socket transport, threads."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import heddle
from conftest import REPO, bundle_path, engine_argv, runtime_binary

DENSE = {"layers": [{"type": "dense", "input_height": 4, "output_height": 2}]}


def test_engine_info(engine: heddle.Engine, runtime: str) -> None:
    assert engine.runtime == runtime
    assert engine.runtime_version
    assert engine.abi_version.split(".")[0] == str(heddle.ABI_VERSION[0])
    assert engine.info["max_frame_bytes"] > 0
    assert any(b["name"] == "cpu" and b["available"] for b in engine.info["backends"])
    assert engine.alive and engine.pid and engine.command
    assert runtime in repr(engine)


def test_network_shapes_parameters_and_describe(engine: heddle.Engine) -> None:
    with engine.create_network(DENSE, seed=3) as net:
        assert (net.input_shape, net.output_shape, net.input_size, net.output_size) == ((4,), (2,), 4, 2)
        assert net.parameter_count == 10
        assert net.parameters == [heddle.Parameter("layers.0.weight", (2, 4)), heddle.Parameter("layers.0.bias", (2,))]
        d = net.describe()
        assert d["total_parameters"] == 10 and d["input_shape"] == [4]
        assert "4" in repr(net)


def test_forward_takes_numpy_lists_and_single_samples(engine: heddle.Engine) -> None:
    with engine.create_network(DENSE, seed=3) as net:
        x = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
        y = net.forward(x)
        assert y.dtype == np.float32 and y.shape == (3, 2)
        assert np.array_equal(net.forward(x.astype(np.float64)), y)  # converted to float32
        assert np.array_equal(net.forward(x.tolist()), y)
        assert np.array_equal(net.forward(x[1]), y[1])  # one sample, no batch dim
        xt = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)) / 10
        assert np.array_equal(net.forward(xt), y)  # not C-contiguous
        assert np.array_equal(net.forward(x[::2]), y[::2])  # a strided view
        ro = np.frombuffer(x.tobytes(), np.float32).reshape(3, 4)  # read-only
        assert not ro.flags.writeable and np.array_equal(net.forward(ro), y)
        be = x.astype(">f4")  # big-endian
        assert np.array_equal(net.forward(be), y)
        with pytest.raises(heddle.ShapeMismatch):  # the core takes no empty batch
            net.forward(np.zeros((0, 4), np.float32))


def test_integer_ids_go_to_networks_that_read_them(engine: heddle.Engine) -> None:
    cfg = {"layers": [{"type": "embedding", "vocab_size": 10, "embedding_dim": 3, "seq_length": 4}]}
    with engine.create_network(cfg, seed=5) as net:
        ids = np.array([[1, 2, 3, 9], [0, 0, 5, 5]])
        a = net.forward(ids.astype(np.float32))
        for dt in (np.int32, np.int64):
            assert np.array_equal(net.forward(ids.astype(dt)), a)
        w = net.get_weights()["layers.0.weight"]
        assert np.array_equal(a[0, 3], w[9])


def test_save_and_load_bytes_and_files(engine: heddle.Engine, tmp_path: Path) -> None:
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    with engine.create_network(DENSE, seed=3) as net:
        y = net.forward(x)
        st = net.to_bytes()
        js = net.to_bytes("json")
        assert js.lstrip().startswith(b"{") and not st.startswith(b"{")
        for data, fmt in ((st, None), (js, None), (st, "safetensors"), (js, heddle.Format.JSON)):
            with engine.load(data, fmt) as m:
                assert np.array_equal(m.forward(x), y)
        net.save(tmp_path / "n.safetensors")
        net.save(tmp_path / "n.json")
        net.save(tmp_path / "n.bin", format="json")
        assert (tmp_path / "n.safetensors").read_bytes() == st
        assert (tmp_path / "n.json").read_bytes() == js
        for name in ("n.safetensors", "n.json", "n.bin"):
            with engine.load(tmp_path / name) as m:
                assert np.array_equal(m.forward(x), y)
        with engine.load(str(tmp_path / "n.safetensors")) as m:
            assert np.array_equal(m.forward(x), y)
        with pytest.raises(heddle.ClientArgumentInvalid):
            net.save(tmp_path / "n.weights")
        with pytest.raises(heddle.ClientArgumentInvalid):
            net.to_bytes("onnx")


def test_load_with_a_config_override(engine: heddle.Engine) -> None:
    with engine.create_network(DENSE, seed=3) as net:
        st = net.to_bytes()
        relu = {"layers": [{"type": "dense", "input_height": 4, "output_height": 2, "activation": "relu"}]}
        with engine.load(st, config=relu) as m:
            y = m.forward(np.full((1, 4), -3, np.float32) * np.sign(net.get_weights()["layers.0.weight"][0]))
            assert np.all(y >= 0)


def test_weights_round_trip(engine: heddle.Engine) -> None:
    with engine.create_network(DENSE, seed=3) as net:
        w = net.get_weights()
        assert list(w) == ["layers.0.weight", "layers.0.bias"]
        new = {k: v + 1 for k, v in w.items()}
        net.set_weights(new, complete=True)
        got = net.get_weights()
        assert all(np.array_equal(got[k], new[k]) for k in w)
        net.set_weights({"layers.0.bias": np.zeros(2)})
        assert np.array_equal(net.get_weights()["layers.0.bias"], np.zeros(2, np.float32))
        with pytest.raises(heddle.WeightsInvalid):
            net.set_weights({"layers.0.bias": np.zeros(2)}, complete=True)


def test_optimizer_steps_and_state(engine: heddle.Engine) -> None:
    with engine.create_network(DENSE, seed=3) as net:
        with net.create_optimizer({"type": "adamw", "lr": 0.01}) as opt:
            assert opt.state() == heddle.OptimizerState(0, {})
            w0 = net.get_weights()
            net.grad(np.ones((2, 4), np.float32), np.ones((2, 2), np.float32))
            assert opt.step() == 1
            assert opt.step(lr=0.0) == 2
            s = opt.state()
            assert s.step == 2
            assert set(s.tensors) == {f"layers.0.{p}.{slot}" for p in ("weight", "bias") for slot in ("exp_avg", "exp_avg_sq")}
            assert s.tensors["layers.0.weight.exp_avg"].shape == (2, 4)
            assert not np.array_equal(net.get_weights()["layers.0.weight"], w0["layers.0.weight"])
            # training with the optimizer carries its state on
            net.train(np.ones((2, 4), np.float32), np.zeros((2, 2), np.float32), optimizer=opt, batch_size=2)
            assert opt.state().step == 3
        assert opt.closed


def test_train_with_progress_and_cross_entropy(engine: heddle.Engine) -> None:
    xor = {"layers": [{"type": "dense", "input_height": 2, "output_height": 8, "activation": "tanh"}, {"type": "dense", "input_height": 8, "output_height": 2}]}
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    labels = np.array([0, 1, 1, 0], np.int32)
    seen = []
    with engine.create_network(xor, seed=11) as net:
        r = net.train(x, labels, epochs=300, batch_size=4, loss="cross_entropy", optimizer={"type": "adamw", "lr": 0.05}, progress=seen.append, progress_every=50)
        assert r.steps == 300 and r.epoch_losses.shape == (300,) and r.epoch_losses.dtype == np.float32
        assert [p.step for p in seen] == [50, 100, 150, 200, 250, 300]
        assert seen[-1].total_steps == 300 and seen[-1].steps_per_epoch == 1 and seen[-1].epoch == 299
        assert r.final_loss < r.epoch_losses[0]
        assert list(net.forward(x).argmax(axis=1)) == [0, 1, 1, 0]
        # without a callback no progress frames are asked for
        r2 = net.train(x, labels.astype(np.int64), epochs=2, batch_size=2, loss="cross_entropy", optimizer="sgd")
        assert r2.steps == 4


def test_networks_are_freed_by_the_garbage_collector(engine: heddle.Engine) -> None:
    net = engine.create_network(DENSE, seed=3)
    del net
    gc.collect()
    # the engine is fine, and a network outlives the Engine name it was made through
    n2 = engine.create_network(DENSE, seed=3)
    assert n2.engine is engine
    n2.close()


def test_calls_from_several_threads(engine: heddle.Engine) -> None:
    with engine.create_network(DENSE, seed=3) as net:
        x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
        want = net.forward(x)
        errors = []

        def work() -> None:
            try:
                for _ in range(50):
                    assert np.array_equal(net.forward(x), want)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors


# ------------------------------------------------------------------ discovery


def test_discovery_order(monkeypatch: pytest.MonkeyPatch) -> None:
    b = str(bundle_path())
    monkeypatch.setenv("HEDDLE_ENGINE_BUNDLE", b)
    monkeypatch.delenv("HEDDLE_ENGINE", raising=False)
    # explicit command wins; a string is split like a shell
    assert heddle.engine_command(["x", "y"]) == ["x", "y"]
    assert heddle.engine_command("'a b' c") == ["a b", "c"]
    # no command, no env: the bundle on node
    cmd = heddle.engine_command()
    assert cmd[-1] == b and os.path.basename(cmd[0]) == "node"
    # HEDDLE_ENGINE next
    monkeypatch.setenv("HEDDLE_ENGINE", "my-engine --flag")
    assert heddle.engine_command() == ["my-engine", "--flag"]
    # an explicit runtime or bundle is a request for the bundle, over HEDDLE_ENGINE
    deno = heddle.engine_command(runtime="deno")
    assert deno[1:] == ["run", "-A", b]
    assert heddle.engine_command(bundle=b)[-1] == b


def test_engine_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEDDLE_ENGINE", " ".join(engine_argv("bun")))
    with heddle.Engine() as e:
        assert e.runtime == "bun"


def test_engine_on_a_runtime_by_name(runtime: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEDDLE_ENGINE_BUNDLE", str(bundle_path()))
    monkeypatch.setenv("PATH", os.path.dirname(runtime_binary(runtime)) + os.pathsep + os.environ["PATH"])
    with heddle.Engine(runtime=runtime) as e:
        assert e.runtime == runtime


def test_the_bundle_in_a_checkout_is_found() -> None:
    # running from bindings/python/src, the checkout's dist/ is a fallback
    if (REPO / "dist" / "heddle-engine.mjs").is_file() and not os.environ.get("HEDDLE_ENGINE_BUNDLE"):
        assert heddle.find_bundle() == REPO / "dist" / "heddle-engine.mjs"


# ------------------------------------------------------------------ unix socket


def test_socket_engine_serves_several_clients(tmp_path: Path, runtime: str) -> None:
    sock = tmp_path / "heddle.sock"
    server = subprocess.Popen(engine_argv(runtime) + ["--socket", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            if sock.exists():
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(str(sock))
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"the engine did not serve {sock}")
            time.sleep(0.05)
        assert (sock.stat().st_mode & 0o777) == 0o600
        a = heddle.Engine.connect(sock)
        b = heddle.Engine.connect(str(sock))
        assert a.runtime == runtime and a.pid is None and a.socket_path == str(sock)
        assert a.info["connection"] != b.info["connection"]
        x = np.ones((1, 4), np.float32)
        with a.create_network(DENSE, seed=3) as na, b.create_network(DENSE, seed=3) as nb:
            assert np.array_equal(na.forward(x), nb.forward(x))
        a.close()
        with b.create_network(DENSE, seed=4) as nb2:  # b is unaffected by a closing
            assert nb2.forward(x).shape == (1, 2)
        b.close()
    finally:
        server.terminate()
        server.wait(10)
