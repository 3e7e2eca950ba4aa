"""The webgpu backend through the engine: after set_backend("webgpu"), forward, grad (from an
output gradient and from a loss), loss, an optimizer step and train give exactly the bits of
the same calls after set_backend("cpu"), on each runtime.

The engine inherits this process's environment, which picks the adapter: SwiftShader for Dawn
(Node, Bun), lavapipe for Deno's wgpu (DENO_WEBGPU_BACKEND=vulkan keeps it off OpenGL). With no
Vulkan driver at all, set_backend("webgpu") raises BackendUnavailable and the engine stays on
the cpu."""

from __future__ import annotations

from typing import Dict

import numpy as np
import pytest

import heddle
from conftest import engine_argv
from test_bits import flat, sha, test_values

SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json"
LAVAPIPE = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"

CONFIG = {
    "layers": [
        {"type": "dense", "input_height": 5, "output_height": 7, "activation": "tanh"},
        {"type": "layer_norm", "norm_size": 7},
        {"type": "dense", "input_height": 7, "output_height": 7, "activation": "gelu"},
        {"type": "residual"},
        {"type": "dense", "input_height": 7, "output_height": 3},
    ]
}


def gpu_env(runtime: str) -> Dict[str, str]:
    if runtime == "deno":
        return {"VK_ICD_FILENAMES": LAVAPIPE, "DENO_WEBGPU_BACKEND": "vulkan"}
    return {"VK_ICD_FILENAMES": SWIFTSHADER}


def calls(engine: heddle.Engine) -> Dict[str, str]:
    """Every compared result, by name, on fresh networks (same seeds every time)."""
    got: Dict[str, str] = {}
    x = test_values(20, 11).reshape(4, 5)
    dy = test_values(12, 12).reshape(4, 3)
    target = test_values(12, 13).reshape(4, 3)
    with engine.create_network(CONFIG, seed=7) as net:
        got["forward"] = sha(net.forward(x))
        got["forward_one"] = sha(net.forward(test_values(5, 14)))
        g = net.grad(x, dy)
        got["input_grad"] = sha(g.input_grad)
        got["weight_grads"] = sha(flat(g.weight_grads))
        gl = net.grad(x, target=target, loss="mse")
        got["grad_loss"] = sha(np.float32(gl.loss))
        got["grad_loss_input_grad"] = sha(gl.input_grad)
        got["grad_loss_weight_grads"] = sha(flat(gl.weight_grads))
        lr = net.loss(x, target, "mse")
        got["loss"] = sha(np.float32(lr.loss))
        got["loss_output_grad"] = sha(lr.output_grad)
        ce = net.loss(x, np.array([0, 2, 1, 2], np.int32), "cross_entropy")
        got["ce_loss"] = sha(np.float32(ce.loss))
        with net.create_optimizer({"type": "adamw", "lr": 0.01}) as opt:
            opt.step()
            # the host's new weights are the ones the next GPU pass uses
            got["forward_after_step"] = sha(net.forward(x))
            got["step_weights"] = sha(flat(net.get_weights()))
            got["optimizer_state"] = sha(flat(opt.state().tensors))

    with engine.create_network(CONFIG, seed=7) as t:
        losses = []
        r = t.train(
            test_values(55, 21).reshape(11, 5),
            test_values(33, 22).reshape(11, 3),
            epochs=2,
            batch_size=4,
            loss="mse",
            optimizer={"type": "adamw", "lr": 0.01},
            clip_norm=0.5,
            shuffle=True,
            seed=5,
            progress=lambda p: losses.append(p.loss),
        )
        assert r.steps == 6 and len(losses) == 6
        got["train_epoch_losses"] = sha(r.epoch_losses)
        got["train_step_losses"] = sha(np.array(losses, np.float32))
        got["trained_weights"] = sha(flat(t.get_weights()))
        got["trained_forward"] = sha(t.forward(x))
    return got


def test_webgpu_gives_the_cpu_bits(runtime: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in gpu_env(runtime).items():
        monkeypatch.setenv(k, v)
    with heddle.Engine(engine_argv(runtime), timeout=300) as engine:
        engine.set_backend("cpu")
        cpu = calls(engine)
        engine.set_backend("webgpu")
        gpu = calls(engine)
        assert gpu == cpu
        # a network made on the GPU goes on with the same bits on the cpu
        with engine.create_network(CONFIG, seed=3) as net:
            x = test_values(15, 31).reshape(3, 5)
            y = sha(net.forward(x))
            engine.set_backend("cpu")
            assert sha(net.forward(x)) == y


def test_webgpu_without_an_adapter_is_backend_unavailable(runtime: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VK_ICD_FILENAMES", "/nonexistent/heddle_icd.json")
    monkeypatch.setenv("DENO_WEBGPU_BACKEND", "vulkan")
    with heddle.Engine(engine_argv(runtime), timeout=120) as engine:
        with engine.create_network(CONFIG, seed=1) as net:
            x = test_values(10, 41).reshape(2, 5)
            before = sha(net.forward(x))
            with pytest.raises(heddle.BackendUnavailable, match="no adapter"):
                engine.set_backend("webgpu")
            with pytest.raises(heddle.ArgumentInvalid):
                engine.set_backend("tpu")
            assert sha(net.forward(x)) == before
