"""PyTorch reference fixtures for Heddle's convolution layers.

Usage (on a machine with torch 2.11, numpy and safetensors; see scripts/torch-fixtures.sh):
    python3 scripts/torch_fixtures/conv.py OUTDIR

Writes OUTDIR/<case>.safetensors, each holding, in float32:
    input                   [batch, *input_shape]   the network input (channels-first)
    layers.{i}.weight/bias  the parameters under Heddle's names (PyTorch layouts)
    output                  the network output (torch forward, CPU float32)
    grad_output             the upstream gradient fed to backward
    input.grad              d(sum(output * grad_output)) / d(input)
    layers.{i}.weight.grad  ... and layers.{i}.bias.grad
and in the metadata: `heddle.config` (the Heddle network config JSON that builds the same
network), `case`, `torch.version`. The test core/layers/conv.torch.test.ts loads every file.

Deterministic: one torch.manual_seed per case (derived from its index), CPU, one thread,
deterministic algorithms. Values are uniform: input in [-2, 2), parameters in [-1, 1),
grad_output in [-1, 1).
"""

import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
torch.backends.cudnn.deterministic = True
torch.backends.cudnn.benchmark = False

SPATIAL = {1: ["input_height"], 2: ["input_height", "input_width"], 3: ["input_depth", "input_height", "input_width"]}
CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
ACTS = {"linear": lambda t: t, "relu": F.relu, "tanh": torch.tanh}


def conv_layer(kind, rank, cin, cout, k, stride=1, padding=0, dilation=1, output_padding=0, bias=True, activation="linear", spatial=None, loom=False):
    """(heddle layer config, torch module, activation fn) for one conv layer."""
    transposed = kind == "conv_transposed"
    htype = f"conv_transposed{rank}d" if transposed else f"conv{rank}d"
    if loom:  # Loom's conv1d field names
        cfg = {"type": htype, "conv1d_in_channels": cin, "conv1d_filters": cout, "conv1d_kernel_size": k, "conv1d_stride": stride, "conv1d_padding": padding}
        if dilation != 1:
            cfg["dilation"] = dilation
    else:
        cfg = {"type": htype, "input_channels": cin, "filters": cout, "kernel_size": k, "stride": stride, "padding": padding, "dilation": dilation}
    if transposed:
        cfg["output_padding"] = output_padding
        mod = CONV_T[rank](cin, cout, k, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, bias=bias)
    else:
        mod = CONV[rank](cin, cout, k, stride=stride, padding=padding, dilation=dilation, bias=bias)
    cfg["bias"] = bias
    if activation != "linear":
        cfg["activation"] = activation
    if spatial is not None:
        for name, v in zip(SPATIAL[rank], spatial):
            cfg[name] = v
    return cfg, mod, ACTS[activation]


def case(name, input_shape, layers, batch=2, flatten_before=()):
    """layers: list of (heddle cfg, torch module, activation); flatten_before: indices whose input is flattened per sample."""
    return {"name": name, "input_shape": input_shape, "layers": layers, "batch": batch, "flatten_before": set(flatten_before)}


def build_cases():
    c = []
    # conv1d
    c.append(case("conv1d_basic", [3, 9], [conv_layer("conv", 1, 3, 4, 3)]))
    c.append(case("conv1d_stride_padding", [2, 10], [conv_layer("conv", 1, 2, 3, 4, stride=2, padding=1)]))
    c.append(case("conv1d_dilation_nobias", [2, 11], [conv_layer("conv", 1, 2, 2, 3, dilation=2, padding=2, bias=False)], batch=3))
    c.append(case("conv1d_size1", [3, 1], [conv_layer("conv", 1, 3, 2, 1)], batch=1))
    c.append(case("conv1d_size1_padded", [1, 1], [conv_layer("conv", 1, 1, 2, 3, padding=1)]))
    # Loom's field names, the input given flat ([C*L], length derived)
    c.append(case("conv1d_loom_fields_flat", [4 * 8], [conv_layer("conv", 1, 4, 4, 3, stride=1, padding=1, loom=True)]))
    # conv2d
    c.append(case("conv2d_basic", [3, 6, 5], [conv_layer("conv", 2, 3, 4, 3, padding=1, spatial=[6, 5])]))
    c.append(case("conv2d_rect_stride_dilation", [2, 7, 8], [conv_layer("conv", 2, 2, 3, [3, 2], stride=[2, 1], padding=[0, 1], dilation=[1, 2])]))
    c.append(case("conv2d_nobias_relu", [2, 5, 5], [conv_layer("conv", 2, 2, 5, 2, stride=2, padding=1, bias=False, activation="relu")], batch=3))
    c.append(case("conv2d_size1", [1, 1, 1], [conv_layer("conv", 2, 1, 3, 1)]))
    c.append(case("conv2d_odd_many_channels", [5, 7, 3], [conv_layer("conv", 2, 5, 6, [3, 3], padding=[2, 1], dilation=[2, 1], stride=[1, 2])]))
    # conv2d -> flatten -> dense (Heddle's dense flattens the [C, H, W] sample)
    conv, mod, act = conv_layer("conv", 2, 2, 3, 3, stride=2, padding=1, activation="relu")
    lin = nn.Linear(3 * 3 * 3, 4)
    c.append(case("conv2d_dense_chain", [2, 6, 5], [(conv, mod, act), ({"type": "dense", "input_height": 27, "output_height": 4}, lin, ACTS["linear"])], flatten_before=[1]))
    # conv3d
    c.append(case("conv3d_basic", [2, 3, 4, 5], [conv_layer("conv", 3, 2, 3, 2)]))
    c.append(case("conv3d_stride_padding", [1, 5, 4, 6], [conv_layer("conv", 3, 1, 2, 3, stride=2, padding=1)]))
    c.append(case("conv3d_dilation_nobias", [2, 5, 3, 5], [conv_layer("conv", 3, 2, 2, [2, 1, 2], dilation=[2, 1, 2], padding=[0, 1, 1], bias=False)]))
    # conv_transposed1d
    c.append(case("conv_transposed1d_basic", [3, 5], [conv_layer("conv_transposed", 1, 3, 2, 3)]))
    c.append(case("conv_transposed1d_stride_output_padding", [2, 4], [conv_layer("conv_transposed", 1, 2, 3, 3, stride=2, padding=1, output_padding=1)]))
    c.append(case("conv_transposed1d_dilation_output_padding", [2, 4], [conv_layer("conv_transposed", 1, 2, 2, 2, stride=1, padding=1, dilation=3, output_padding=2, bias=False)], batch=3))
    c.append(case("conv_transposed1d_size1", [4, 1], [conv_layer("conv_transposed", 1, 4, 5, 1)]))
    # conv_transposed2d
    c.append(case("conv_transposed2d_basic", [2, 3, 4], [conv_layer("conv_transposed", 2, 2, 3, 3, padding=1)]))
    c.append(case("conv_transposed2d_stride_output_padding", [3, 3, 2], [conv_layer("conv_transposed", 2, 3, 2, [2, 3], stride=[2, 3], padding=[1, 0], output_padding=[1, 2])]))
    c.append(case("conv_transposed2d_dilation_nobias_tanh", [2, 3, 3], [conv_layer("conv_transposed", 2, 2, 5, 2, dilation=[2, 1], padding=[1, 0], bias=False, activation="tanh")]))
    # conv_transposed3d
    c.append(case("conv_transposed3d_basic", [2, 2, 3, 2], [conv_layer("conv_transposed", 3, 2, 2, 2)]))
    c.append(case("conv_transposed3d_stride_output_padding", [1, 2, 2, 3], [conv_layer("conv_transposed", 3, 1, 3, [2, 3, 2], stride=2, padding=[0, 1, 1], output_padding=[1, 0, 1])]))
    # an autoencoder: conv2d (downsample) -> conv_transposed2d (upsample)
    down, dmod, dact = conv_layer("conv", 2, 2, 4, 3, stride=2, padding=1, activation="relu")
    up, umod, uact = conv_layer("conv_transposed", 2, 4, 2, 3, stride=2, padding=1, output_padding=1)
    c.append(case("conv2d_conv_transposed2d_chain", [2, 6, 6], [(down, dmod, dact), (up, umod, uact)]))
    return c


def run_case(spec, seed, outdir):
    torch.manual_seed(seed)
    layers = spec["layers"]
    batch = spec["batch"]
    # Parameters uniform in [-1, 1), in layer order then (weight, bias).
    params = {}
    for i, (cfg, mod, _) in enumerate(layers):
        with torch.no_grad():
            mod.weight.uniform_(-1.0, 1.0)
            if mod.bias is not None:
                mod.bias.uniform_(-1.0, 1.0)
        params[f"layers.{i}.weight"] = mod.weight
        if mod.bias is not None:
            params[f"layers.{i}.bias"] = mod.bias
    x = (torch.rand([batch] + list(spec["input_shape"]), dtype=torch.float32) * 4.0 - 2.0).requires_grad_(True)
    # The torch view of the input: a flat Heddle input is reshaped to [C, L] for the first conv.
    h = x
    first = layers[0][0]
    if len(spec["input_shape"]) == 1 and first["type"].startswith("conv"):
        cin = first.get("input_channels", first.get("conv1d_in_channels"))
        h = h.reshape(batch, cin, -1)
    for i, (cfg, mod, act) in enumerate(layers):
        if i in spec["flatten_before"]:
            h = h.reshape(batch, -1)
        h = act(mod(h))
    out = h
    grad_output = torch.rand(out.shape, dtype=torch.float32) * 2.0 - 1.0
    out.backward(grad_output)

    tensors = {
        "input": x.detach(),
        "output": out.detach(),
        "grad_output": grad_output,
        "input.grad": x.grad.detach(),
    }
    for name, p in params.items():
        tensors[name] = p.detach()
        tensors[name + ".grad"] = p.grad.detach()
    tensors = {k: v.contiguous().to(torch.float32).clone() for k, v in tensors.items()}
    config = {"input_shape": list(spec["input_shape"]), "layers": [cfg for cfg, _, _ in layers]}
    meta = {"heddle.config": json.dumps(config, sort_keys=True), "case": spec["name"], "torch.version": torch.__version__, "seed": str(seed)}
    path = os.path.join(outdir, spec["name"] + ".safetensors")
    save_file(tensors, path, metadata=meta)
    size = os.path.getsize(path)
    if size >= 200 * 1024:
        raise SystemExit(f"{path} is {size} bytes; fixtures must stay under 200 KB")
    return path, size


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: conv.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    cases = build_cases()
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    for idx, spec in enumerate(cases):
        path, size = run_case(spec, 1000 + idx, outdir)
        print(f"{os.path.basename(path)}: {size} bytes")


if __name__ == "__main__":
    main()
