"""Forward, grad, optimizer step, train, save and load through the engine (on each runtime)
give exactly the TS core's bits: the SHA-256 of every result equals the in-process run's
(tests/reference.ts)."""

from __future__ import annotations

import hashlib
from typing import Dict

import numpy as np

import heddle

CONFIG = {
    "layers": [
        {"type": "dense", "input_height": 5, "output_height": 7, "activation": "tanh"},
        {"type": "dense", "input_height": 7, "output_height": 6, "activation": "relu"},
        {"type": "dense", "input_height": 6, "output_height": 3},
    ]
}
SEQ_CONFIG = {
    "input_shape": [4, 3],
    "layers": [
        {"type": "lstm", "input_size": 3, "hidden_size": 5, "seq_length": 4},
        {"type": "layer_norm", "norm_size": 5},
        {"type": "dense", "input_height": 5, "output_height": 2},
    ],
}


def test_values(n: int, seed: int) -> np.ndarray:
    """The xorshift32 generator of abi/engine/testing.ts (testValues)."""
    s = (seed & 0xFFFFFFFF) or 1
    out = np.empty(n, np.float32)
    for i in range(n):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        out[i] = s / 2**31 - 1
    return out


test_values.__test__ = False  # type: ignore[attr-defined]  (not a test)


def sha(data) -> str:
    if isinstance(data, (bytes, bytearray)):
        return hashlib.sha256(data).hexdigest()
    a = np.asarray(data)
    assert a.dtype.byteorder in ("=", "<", "|")
    return hashlib.sha256(a.tobytes()).hexdigest()


def flat(d: Dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([v.ravel() for v in d.values()]).astype(np.float32)


def test_generator_matches_the_c_tests() -> None:
    # abi/engine/testing.ts: testValues(3, 11); the first values are fixed by the algorithm.
    v = test_values(3, 11)
    assert v.dtype == np.float32 and v.shape == (3,)
    assert np.all(np.abs(v) <= 1)


def test_bits_equal_the_ts_core(engine: heddle.Engine, runtime: str, reference: Dict[str, str]) -> None:
    assert engine.runtime == runtime
    got: Dict[str, str] = {}
    x = test_values(20, 11).reshape(4, 5)
    dy = test_values(12, 12).reshape(4, 3)

    with engine.create_network(CONFIG, seed=7) as net:
        got["forward"] = sha(net.forward(x))
        g = net.grad(x, dy)
        got["input_grad"] = sha(g.input_grad)
        got["weight_grads"] = sha(flat(g.weight_grads))
        assert list(g.weight_grads) == [p.name for p in net.parameters]
        got["save_safetensors"] = sha(net.to_bytes("safetensors"))
        got["save_json"] = sha(net.to_bytes("json"))
        with net.create_optimizer({"type": "sgd", "lr": 0.1, "momentum": 0.9}) as opt:
            assert opt.step() == 1
            got["optimizer_weights"] = sha(flat(net.get_weights()))
            state = opt.state()
            assert state.step == 1
            got["optimizer_state"] = sha(flat(state.tensors))

    with engine.create_network(CONFIG, seed=7) as t:
        steps, lrs = [], []

        def progress(p: heddle.TrainProgress) -> None:
            steps.append(p.loss)
            lrs.append(p.lr)

        r = t.train(
            test_values(30, 13).reshape(6, 5),
            test_values(18, 14).reshape(6, 3),
            epochs=3,
            batch_size=4,
            loss="mse",
            optimizer={"type": "adamw", "lr": 0.01},
            schedule={"type": "cosine", "T_max": 6},
            shuffle=True,
            seed=5,
            progress=progress,
        )
        assert r.steps == 6 and len(steps) == 6
        assert r.final_loss == r.epoch_losses[-1]
        got["train_epoch_losses"] = sha(r.epoch_losses)
        got["train_step_losses"] = sha(np.array(steps, np.float32))
        got["train_step_lrs"] = sha(np.array(lrs, np.float64))
        trained = t.to_bytes()
        got["trained_safetensors"] = sha(trained)
        with engine.load(trained) as loaded:
            got["loaded_forward"] = sha(loaded.forward(x))
        with engine.load(t.to_bytes("json"), "json") as loaded:
            got["loaded_json_forward"] = sha(loaded.forward(x))

    with engine.create_network(CONFIG, seed=7) as fresh:
        lr = fresh.loss(x, test_values(12, 15).reshape(4, 3), "mse")
        got["loss"] = sha(np.float32(lr.loss))
        got["loss_output_grad"] = sha(lr.output_grad)
        ce = fresh.loss(x, np.array([0, 2, 1, 2], np.int32), "cross_entropy")
        got["ce_loss"] = sha(np.float32(ce.loss))
        got["ce_output_grad"] = sha(ce.output_grad)
        fresh.set_weights(
            {p.name: test_values(int(np.prod(p.shape)), 50 + i).reshape(p.shape) for i, p in enumerate(fresh.parameters)},
            complete=True,
        )
        got["set_weights_forward"] = sha(fresh.forward(x))

    with engine.create_network(SEQ_CONFIG, seed=3) as seq:
        assert seq.input_shape == (4, 3) and seq.output_shape == (4, 2)
        sx = test_values(24, 21).reshape(2, 4, 3)
        got["seq_forward"] = sha(seq.forward(sx))
        sg = seq.grad(sx, test_values(16, 22).reshape(2, 4, 2))
        got["seq_input_grad"] = sha(sg.input_grad)
        got["seq_weight_grads"] = sha(flat(sg.weight_grads))

    assert got == reference


def test_grad_from_a_loss_equals_grad_from_its_output_grad(engine: heddle.Engine) -> None:
    x = test_values(20, 31).reshape(4, 5)
    target = test_values(12, 32).reshape(4, 3)
    with engine.create_network(CONFIG, seed=9) as net:
        lr = net.loss(x, target, "mse")
        a = net.grad(x, target=target, loss="mse")
        b = net.grad(x, lr.output_grad)
        assert a.loss == lr.loss
        assert sha(a.input_grad) == sha(b.input_grad)
        assert sha(flat(a.weight_grads)) == sha(flat(b.weight_grads))


def test_pipelined_forward_equals_sequential(engine: heddle.Engine) -> None:
    xs = test_values(3 * 2 * 5, 41).reshape(3, 2, 5)
    with engine.create_network(CONFIG, seed=4) as net:
        ys = net.forward_pipelined(xs)
        assert ys.shape == (3, 2, 3)
        for i in range(3):
            assert sha(ys[i]) == sha(net.forward(xs[i]))
