"""PyTorch reference fixtures for Heddle's recurrent layers (rnn, lstm, gru).

Usage: python3 scripts/torch_fixtures/recurrent.py OUTDIR
(normally through scripts/torch-fixtures.sh on the device machine; torch 2.11, numpy,
safetensors). Everything runs on the CPU in float32, no network access.

Each case writes OUTDIR/<case>.safetensors holding, under Heddle's names:
  input                      the network input [batch, ...input_shape]
  output                     the network output
  grad_output                dL/d(output), random
  input.grad                 dL/d(input) for L = sum(output * grad_output)
  layers.{i}.{param}         every parameter (weight_ih, weight_hh, bias_ih, bias_hh, weight, bias)
  layers.{i}.{param}.grad    its gradient
  state.h0, state.c0         (optional) the initial state [batch, hidden] of layers.0
  state.h0.grad, state.c0.grad
and in the metadata:
  heddle.config              the Heddle network config (JSON)
  torch.version              the PyTorch version that produced it
The layer test core/layers/recurrent.torch.test.ts loads every file in
tests/fixtures/torch/recurrent/ and compares Heddle's forward and backward with these.
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)

RECURRENT = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def recurrent_stage(kind, inp, hid, seq=None, bias=True, nonlinearity="tanh", num_layers=1):
    """One torch recurrent module; with num_layers > 1 it stands for that many Heddle layers."""
    kwargs = {"bias": bias, "batch_first": True, "num_layers": num_layers}
    if kind == "rnn":
        kwargs["nonlinearity"] = nonlinearity
    module = RECURRENT[kind](inp, hid, **kwargs)
    configs = []
    for layer in range(num_layers):
        cfg = {"type": kind, "input_size": inp if layer == 0 else hid, "hidden_size": hid}
        if seq is not None and layer == 0:
            cfg["seq_length"] = seq
        if not bias:
            cfg["bias"] = False
        if kind == "rnn" and nonlinearity != "tanh":
            cfg["nonlinearity"] = nonlinearity
        configs.append(cfg)
    return {"kind": kind, "module": module, "configs": configs, "inp": inp, "hid": hid, "seq": seq, "num_layers": num_layers}


def dense_stage(inp, out, activation="linear", bias=True):
    module = torch.nn.Linear(inp, out, bias=bias)
    cfg = {"type": "dense", "input_height": inp, "output_height": out}
    if activation != "linear":
        cfg["activation"] = activation
    if not bias:
        cfg["bias"] = False
    return {"kind": "dense", "module": module, "configs": [cfg], "inp": inp, "activation": activation}


def named_params(stages):
    """Heddle name -> torch parameter, in Heddle's layer order."""
    out = {}
    index = 0
    for st in stages:
        m = st["module"]
        if st["kind"] == "dense":
            out[f"layers.{index}.weight"] = m.weight
            if m.bias is not None:
                out[f"layers.{index}.bias"] = m.bias
            index += 1
            continue
        for layer in range(st["num_layers"]):
            for p in PARAMS:
                t = getattr(m, f"{p}_l{layer}", None)
                if t is not None:
                    out[f"layers.{index}.{p}"] = t
            index += 1
    return out


def run(stages, x, state):
    """The network forward in torch: Heddle's shape rules written out (flat <-> [seq, features])."""
    batch = x.shape[0]
    for i, st in enumerate(stages):
        if st["kind"] == "dense":
            if x.shape[-1] != st["inp"]:
                x = x.reshape(batch, -1)
            x = st["module"](x)
            act = st["activation"]
            if act == "tanh":
                x = torch.tanh(x)
            elif act == "sigmoid":
                x = torch.sigmoid(x)
            elif act != "linear":
                raise ValueError(act)
            continue
        if x.dim() != 3 or x.shape[-1] != st["inp"]:
            x = x.reshape(batch, -1, st["inp"])
        hx = None
        if i == 0 and state:
            h0 = state["state.h0"].unsqueeze(0)
            hx = (h0, state["state.c0"].unsqueeze(0)) if st["kind"] == "lstm" else h0
        x, _ = st["module"](x, hx)
    return x


def make_case(out_dir, name, seed, batch, input_shape, stages, with_state=False, scale=0.7):
    torch.manual_seed(seed)
    params = named_params(stages)
    with torch.no_grad():
        for p in params.values():
            p.uniform_(-scale, scale)
    x = torch.randn(batch, *input_shape, requires_grad=True)
    state = {}
    if with_state:
        first = stages[0]
        state["state.h0"] = (0.8 * torch.randn(batch, first["hid"])).requires_grad_()
        if first["kind"] == "lstm":
            state["state.c0"] = (0.8 * torch.randn(batch, first["hid"])).requires_grad_()
    y = run(stages, x, state)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()

    tensors = {"input": x, "output": y, "grad_output": gy, "input.grad": x.grad}
    for k, p in params.items():
        tensors[k] = p
        tensors[f"{k}.grad"] = p.grad if p.grad is not None else torch.zeros_like(p)
    for k, t in state.items():
        tensors[k] = t
        tensors[f"{k}.grad"] = t.grad
    tensors = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in tensors.items()}

    layers = [cfg for st in stages for cfg in st["configs"]]
    config = {"input_shape": list(input_shape), "layers": layers}
    metadata = {"heddle.config": json.dumps(config), "torch.version": torch.__version__}
    path = os.path.join(out_dir, f"{name}.safetensors")
    save_file(tensors, path, metadata=metadata)
    size = os.path.getsize(path)
    assert size < 200_000, f"{path} is {size} bytes"
    print(f"{name}: {len(tensors)} tensors, {size} bytes, output {tuple(y.shape)}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: recurrent.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    R = recurrent_stage
    D = dense_stage
    # name, seed, batch, per-sample input shape, stages, initial state
    cases = [
        ("rnn_tanh", 1, 2, [5, 3], [R("rnn", 3, 4)], False),
        ("rnn_relu_nobias", 2, 2, [4, 2], [R("rnn", 2, 3, bias=False, nonlinearity="relu")], False),
        ("rnn_seq1_hidden1", 3, 3, [1, 4], [R("rnn", 4, 1)], False),
        ("rnn_state", 4, 2, [6, 3], [R("rnn", 3, 5)], True),
        ("lstm_basic", 5, 2, [6, 3], [R("lstm", 3, 4)], False),
        ("lstm_nobias_hidden1", 6, 2, [5, 2], [R("lstm", 2, 1, bias=False)], False),
        ("lstm_state", 7, 2, [4, 3], [R("lstm", 3, 5)], True),
        ("lstm_long", 8, 2, [20, 4], [R("lstm", 4, 8)], False),
        ("gru_basic", 9, 3, [4, 5], [R("gru", 5, 3)], False),
        ("gru_nobias", 10, 1, [7, 1], [R("gru", 1, 2, bias=False)], False),
        ("gru_state", 11, 2, [3, 2], [R("gru", 2, 4)], True),
        # lstm -> dense applied per step
        ("lstm_dense", 12, 2, [5, 3], [R("lstm", 3, 6), D(6, 2, "tanh")], False),
        # Loom's flat layout: dense 8 -> 12 values read as 4 steps x 3 features -> gru -> dense over all 4 x 4 outputs
        ("loom_flat_gru", 13, 2, [8], [D(8, 12), R("gru", 3, 4, seq=4), D(16, 2, "sigmoid")], False),
        # torch's num_layers=2 is two Heddle lstm layers in a row
        ("lstm_two_layers", 14, 2, [5, 3], [R("lstm", 3, 4, num_layers=2)], False),
        ("rnn_saturated", 15, 2, [6, 2], [R("rnn", 2, 3)], False),
    ]
    for name, seed, batch, shape, stages, with_state in cases:
        scale = 2.0 if name == "rnn_saturated" else 0.7
        make_case(out, name, seed, batch, shape, stages, with_state, scale)


if __name__ == "__main__":
    main()
