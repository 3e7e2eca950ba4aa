"""PyTorch reference fixtures for multi_head_attention, swiglu and embedding (and small
transformer networks built from them).

Usage (on a machine with torch 2.11, numpy, safetensors; CPU float32, no network access):
    python3 scripts/torch_fixtures/attention.py OUTDIR

Writes OUTDIR/<case>.safetensors, one per case, each holding:
    input                 the network input (float32, or int64 token ids)
    output                the forward output
    grad_output           dL/d(output) fed to backward
    input.grad            dL/d(input) (float inputs only)
    <param>               every parameter under its Heddle name (layers.0.q_proj.weight, ...)
    <param>.grad          its gradient
and metadata "heddle.config": the Heddle network config (JSON), "heddle.case", "heddle.torch".

The models are written in plain torch ops, independently of Heddle: nn.Linear layout weights,
Llama's rotate-half RoPE with Hugging Face's float32 inverse-frequency recipe, grouped-query
attention by repeat_interleave of the kv heads, explicit softmax attention with scale
1/sqrt(head_dim) and a -inf causal mask, RMSNorm as x * rsqrt(mean(x^2) + eps) * w, SwiGLU as
down(silu(gate x) * up x), embedding by F.embedding.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)


# ----------------------------------------------------------------------------- model pieces

def rope_cos_sin(seq, head_dim, base):
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    t = torch.arange(seq, dtype=torch.int64).float()
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def mha(x, p, pre, cfg):
    """x [B, S, d_model] -> [B, S, d_model]."""
    B, S, _ = x.shape
    H = cfg["num_heads"]
    KV = cfg.get("num_kv_heads", H)
    Dh = cfg.get("head_dim", cfg["d_model"] // H)
    q = F.linear(x, p[pre + "q_proj.weight"], p.get(pre + "q_proj.bias")).view(B, S, H, Dh).transpose(1, 2)
    k = F.linear(x, p[pre + "k_proj.weight"], p.get(pre + "k_proj.bias")).view(B, S, KV, Dh).transpose(1, 2)
    v = F.linear(x, p[pre + "v_proj.weight"], p.get(pre + "v_proj.bias")).view(B, S, KV, Dh).transpose(1, 2)
    base = cfg.get("rope_freq_base")
    if base:
        cos, sin = rope_cos_sin(S, Dh, base)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
    k = k.repeat_interleave(H // KV, dim=1)
    v = v.repeat_interleave(H // KV, dim=1)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(Dh))
    if cfg.get("causal", False):
        mask = torch.ones(S, S, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    o = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, H * Dh)
    return F.linear(o, p[pre + "o_proj.weight"], p.get(pre + "o_proj.bias"))


def swiglu(x, p, pre):
    return F.linear(F.silu(F.linear(x, p[pre + "gate_proj.weight"])) * F.linear(x, p[pre + "up_proj.weight"]), p[pre + "down_proj.weight"])


def rms_norm(x, p, pre, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * p[pre + "weight"]


def run_layers(x, layers, p, prefix="layers."):
    """A Heddle layer list, executed in order (residual adds the input of the preceding layer)."""
    prev_in = None
    for i, cfg in enumerate(layers):
        pre = f"{prefix}{i}."
        t = cfg["type"]
        if t in ("multi_head_attention", "mha"):
            y = mha(x, p, pre, cfg)
        elif t == "swiglu":
            y = swiglu(x, p, pre)
        elif t == "rms_norm":
            y = rms_norm(x, p, pre, cfg["epsilon"])
        elif t == "embedding":
            y = F.embedding(x, p[pre + "weight"])
        elif t == "dense":
            y = F.linear(x, p[pre + "weight"], p.get(pre + "bias"))
        elif t == "sequential":
            y = run_layers(x, cfg["layers"], p, pre + "layers.")
        elif t == "residual":
            y = x + prev_in
        else:
            raise ValueError(t)
        prev_in, x = x, y
    return x


# ----------------------------------------------------------------------------- parameters

def param_shapes(layers, prefix="layers."):
    """(name, shape, kind) in Heddle's order."""
    out = []
    for i, cfg in enumerate(layers):
        pre = f"{prefix}{i}."
        t = cfg["type"]
        if t in ("multi_head_attention", "mha"):
            dm, H = cfg["d_model"], cfg["num_heads"]
            KV = cfg.get("num_kv_heads", H)
            Dh = cfg.get("head_dim", dm // H)
            bias = cfg.get("bias", True)
            for name, o, n in (("q_proj", H * Dh, dm), ("k_proj", KV * Dh, dm), ("v_proj", KV * Dh, dm), ("o_proj", dm, H * Dh)):
                out.append((pre + name + ".weight", (o, n), "w"))
                if bias:
                    out.append((pre + name + ".bias", (o,), "b"))
        elif t == "swiglu":
            d, n = cfg["input_height"], cfg["output_height"]
            out += [(pre + "gate_proj.weight", (n, d), "w"), (pre + "up_proj.weight", (n, d), "w"), (pre + "down_proj.weight", (d, n), "w")]
        elif t == "rms_norm":
            out.append((pre + "weight", (cfg["norm_size"],), "gain"))
        elif t == "embedding":
            out.append((pre + "weight", (cfg["vocab_size"], cfg["embedding_dim"]), "emb"))
        elif t == "dense":
            out.append((pre + "weight", (cfg["output_height"], cfg["input_height"]), "w"))
            if cfg.get("bias", True):
                out.append((pre + "bias", (cfg["output_height"],), "b"))
        elif t == "sequential":
            out += param_shapes(cfg["layers"], pre + "layers.")
    return out


def make_params(layers, gen):
    p = {}
    for name, shape, kind in param_shapes(layers):
        if kind == "w":
            fan_in = shape[1]
            t = (torch.rand(shape, generator=gen) * 2 - 1) * (1.5 / math.sqrt(fan_in))
        elif kind == "b":
            t = (torch.rand(shape, generator=gen) * 2 - 1) * 0.3
        elif kind == "gain":
            t = 0.5 + torch.rand(shape, generator=gen)
        else:  # emb
            t = torch.randn(shape, generator=gen)
        p[name] = t.float().contiguous().requires_grad_(True)
    return p


# ----------------------------------------------------------------------------- cases

def block(d, heads, kv, inter, **attn):
    return [
        {"type": "sequential", "layers": [
            {"type": "rms_norm", "norm_size": d, "epsilon": 1e-5},
            {"type": "multi_head_attention", "d_model": d, "num_heads": heads, "num_kv_heads": kv, **attn},
        ]},
        {"type": "residual"},
        {"type": "sequential", "layers": [
            {"type": "rms_norm", "norm_size": d, "epsilon": 1e-5},
            {"type": "swiglu", "input_height": d, "output_height": inter},
        ]},
        {"type": "residual"},
    ]


def mha_cfg(**kw):
    return {"type": "multi_head_attention", **kw}


# name: (per-sample input shape, batch, layers, vocab for id inputs or None)
CASES = {
    "mha_basic": ([5, 8], 2, [mha_cfg(d_model=8, num_heads=2, bias=True)], None),
    "mha_causal_gqa_rope": ([6, 16], 2, [mha_cfg(d_model=16, num_heads=4, num_kv_heads=2, causal=True, rope_freq_base=10000, bias=False)], None),
    "mha_mqa_head_dim_rope500k": ([7, 10], 2, [mha_cfg(d_model=10, num_heads=2, num_kv_heads=1, head_dim=6, causal=True, rope_freq_base=500000, bias=True)], None),
    "mha_gqa_rope_bidirectional": ([4, 8], 2, [mha_cfg(d_model=8, num_heads=4, num_kv_heads=2, head_dim=2, causal=False, rope_freq_base=10000, bias=True)], None),
    "mha_seq1": ([1, 6], 3, [mha_cfg(d_model=6, num_heads=3, causal=True, bias=True)], None),
    "mha_causal_odd": ([9, 7], 1, [mha_cfg(d_model=7, num_heads=1, causal=True, bias=False)], None),
    "swiglu": ([3, 6], 2, [{"type": "swiglu", "input_height": 6, "output_height": 10}], None),
    "embedding": ([6], 2, [{"type": "embedding", "vocab_size": 11, "embedding_dim": 5}], 11),
    "block": ([5, 8], 2, block(8, 4, 2, 12, causal=True, rope_freq_base=10000, bias=False), None),
    "lm": ([6], 2, [
        {"type": "embedding", "vocab_size": 13, "embedding_dim": 8},
        *block(8, 4, 2, 12, causal=True, rope_freq_base=10000, bias=False),
        {"type": "rms_norm", "norm_size": 8, "epsilon": 1e-5},
        {"type": "dense", "input_height": 8, "output_height": 13, "bias": False},
    ], 13),
}


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for ci, (name, (shape, batch, layers, vocab)) in enumerate(CASES.items()):
        gen = torch.Generator().manual_seed(1000 + ci)
        params = make_params(layers, gen)
        if vocab is None:
            x = ((torch.rand([batch, *shape], generator=gen) * 4) - 2).float().requires_grad_(True)
        else:
            x = torch.randint(0, vocab, [batch, *shape], generator=gen, dtype=torch.int64)
            x[0, 1] = x[0, 0]  # a repeated id: its weight row sums two positions
        y = run_layers(x, layers, params)
        g = (torch.rand(y.shape, generator=gen) * 2 - 1).float()
        y.backward(g)
        tensors = {"input": x.detach().contiguous(), "output": y.detach().contiguous(), "grad_output": g.contiguous()}
        if vocab is None:
            tensors["input.grad"] = x.grad.detach().contiguous()
        for pname, t in params.items():
            tensors[pname] = t.detach().contiguous()
            tensors[pname + ".grad"] = t.grad.detach().contiguous()
        config = {"input_shape": shape, "layers": layers}
        meta = {"heddle.config": json.dumps(config), "heddle.case": name, "heddle.torch": torch.__version__}
        path = os.path.join(out_dir, name + ".safetensors")
        save_file(tensors, path, metadata=meta)
        size = os.path.getsize(path)
        assert size < 200_000, f"{path} is {size} bytes"
        print(f"{name}: {len(tensors)} tensors, {size} bytes, output max |y| {y.detach().abs().max().item():.4g}")


if __name__ == "__main__":
    main()
