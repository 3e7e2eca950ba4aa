"""PyTorch reference for scripts/bench-webgpu.ts: the same three workloads (dense 4096x4096 at
batch 1024, conv2d, attention block), fp32 with TF32 off, forward and one SGD training step
with an MSE loss, on the GPU when there is one. Prints a Markdown table and a JSON line.

    python3 scripts/bench_torch.py [--small] [--reps 5]
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class AttentionBlock(nn.Module):
    """multi_head_attention (causal) + residual + layer_norm + dense gelu + dense, as the Heddle config."""

    def __init__(self, dm, heads, ff):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dm, dm)
        self.k = nn.Linear(dm, dm)
        self.v = nn.Linear(dm, dm)
        self.o = nn.Linear(dm, dm)
        self.norm = nn.LayerNorm(dm)
        self.up = nn.Linear(dm, ff)
        self.down = nn.Linear(ff, dm)

    def forward(self, x):
        b, s, d = x.shape
        h = self.heads

        def split(t):
            return t.view(b, s, h, d // h).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), is_causal=True)
        a = self.o(a.transpose(1, 2).reshape(b, s, d))
        y = self.norm(a + x)
        return self.down(F.gelu(self.up(y)))


def workloads(small):
    d, db = (256, 32) if small else (4096, 1024)
    ch, hw, cb = (8, 12, 4) if small else (64, 32, 32)
    seq, dm, heads, ff, ab = (16, 32, 4, 64, 2) if small else (256, 512, 8, 1024, 8)
    attn_flops = ab * (2 * 4 * seq * dm * dm + 2 * 2 * seq * seq * dm + 2 * 2 * seq * dm * ff)
    return [
        ("dense", nn.Linear(d, d), (db, d), 2 * db * d * d),
        ("conv2d", nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU()), (cb, ch, hw, hw), 2 * cb * ch * ch * 9 * hw * hw),
        ("attention", AttentionBlock(dm, heads, ff), (ab, seq, dm), attn_flops),
    ]


def median_ms(fn, reps, sync):
    times = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {name}, fp32, TF32 off")
    rows = []
    for wname, model, shape, flops in workloads(args.small):
        torch.manual_seed(0)
        model = model.to(dev)
        x = torch.randn(*shape, device=dev)
        target = torch.randn_like(model(x))
        opt = torch.optim.SGD(model.parameters(), lr=0.001)

        def fwd():
            with torch.no_grad():
                model(x)

        def step():
            opt.zero_grad(set_to_none=False)
            F.mse_loss(model(x), target).backward()
            opt.step()

        fwd()
        step()
        f = median_ms(fwd, args.reps, sync)
        t = median_ms(step, args.reps, sync)
        rows.append({"workload": wname, "backend": f"torch {dev.type}", "op": "forward", "ms": f, "gflops": flops / f / 1e6})
        rows.append({"workload": wname, "backend": f"torch {dev.type}", "op": "train step", "ms": t, "gflops": 3 * flops / t / 1e6})
    print("\n| workload | op | backend | ms (median) | GFLOP/s |")
    print("|---|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['workload']} | {r['op']} | {r['backend']} | {r['ms']:.2f} | {r['gflops']:.2f} |")
    print(json.dumps({"device": name, "small": args.small, "rows": rows}))


if __name__ == "__main__":
    main()
