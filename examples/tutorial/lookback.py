#!/usr/bin/env python3
"""A new sparsity pattern in five minutes (docs/tutorial.md), as one script.

The pattern is examples/tutorial/lookback.attn: causal attention within a
chunk of 1024 tokens plus the whole previous chunk. The script
  1. JIT-compiles it with attnc.compile (verbose: compile time, cache hit or miss);
  2. checks the GPU kernel against attnc's float64 reference executor
     (`attnc run --reference`) on random data: odd lengths, qlen != klen, GQA;
  3. runs it inside a small model through attnc.torch.Attention, eagerly and
     under torch.compile(fullgraph=True);
  4. times it against FlexAttention with the same mask as a mask_mod (and
     cuDNN's causal attention of the same shape, for scale), at --length.

Needs a CUDA GPU, torch (with FlexAttention: 2.5 or newer), numpy and the
attnc package (pip-installed, or the source tree's python/ on PYTHONPATH with
ATTNC_LIBRARY set). Usage: lookback.py [--length 32768] [--attnc PATH]
Exits 1 if a check fails.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import attnc
import attnc.torch

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_FILE = os.path.join(HERE, "lookback.attn")
CHUNK = 1024


def check_against_reference(kernel, attnc_command, gen):
    """Step 2: the kernel against `attnc run --reference` (float64)."""
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for B, Hq, Hkv, Lq, Lk in [(1, 4, 4, 3000, 3000), (2, 8, 2, 777, 2555)]:
            t = {n: torch.randn(B, h, l, 128, generator=gen).to(torch.bfloat16)
                 for n, h, l in (("q", Hq, Lq), ("k", Hkv, Lk), ("v", Hkv, Lk))}
            out, lse = kernel(t["q"].cuda(), t["k"].cuda(), t["v"].cuda())
            for n, x in t.items():
                np.save(os.path.join(tmp, n + ".npy"), x.float().numpy())
            subprocess.run([attnc_command, "run", "--reference", SOURCE_FILE, "--variant", "lookback",
                            "--q", os.path.join(tmp, "q.npy"), "--k", os.path.join(tmp, "k.npy"),
                            "--v", os.path.join(tmp, "v.npy"), "--out", os.path.join(tmp, "o.npy"),
                            "--lse", os.path.join(tmp, "lse.npy"), "--dtype-out", "f64"], check=True)
            ref_o = torch.from_numpy(np.load(os.path.join(tmp, "o.npy")))
            ref_lse = torch.from_numpy(np.load(os.path.join(tmp, "lse.npy")))
            o_err = ((out.cpu().double() - ref_o).norm() / ref_o.norm()).item()
            lse_err = (lse.cpu().double() - ref_lse).abs().max().item()
            ok = o_err < 2e-2 and lse_err < 1e-2
            failures += not ok
            print(f"  {'ok  ' if ok else 'FAIL'} B={B} heads {Hq}/{Hkv} qlen {Lq} klen {Lk}: "
                  f"O relative error {o_err:.1e}, LSE max error {lse_err:.1e}")
    return failures


class Block(torch.nn.Module):
    """A pre-norm attention block whose attention is the attnc kernel."""

    def __init__(self, kernel, dim=1024, heads=8):
        super().__init__()
        self.heads = heads
        self.norm = torch.nn.RMSNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim, bias=False)
        self.out = torch.nn.Linear(dim, dim, bias=False)
        self.attention = attnc.torch.Attention(kernel)

    def forward(self, x):
        b, l, _ = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, l, 3, self.heads, -1).unbind(2)
        o = self.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.out(o.transpose(1, 2).reshape(b, l, -1))


def run_in_a_model(kernel):
    """Step 3: eager and torch.compile'd, with the same result."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[Block(kernel) for _ in range(4)]).cuda().to(torch.bfloat16)
    x = torch.randn(2, 5000, 1024, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, fullgraph=True)(x)
    # Inductor fuses the norms and residuals differently in bf16: compare in
    # relative L2, not elementwise.
    diff = ((eager.float() - compiled.float()).norm() / eager.float().norm()).item()
    ok = diff < 1e-2
    print(f"  {'ok  ' if ok else 'FAIL'} 4 blocks, x {tuple(x.shape)}: eager and torch.compile(fullgraph=True) "
          f"agree to {diff:.1e} (relative L2)")
    return 0 if ok else 1


def benchmark(kernel, length):
    """Step 4: attnc vs FlexAttention (same mask) and cuDNN causal."""
    B, H, D = 1, 16, 128
    q, k, v = (torch.randn(B, H, length, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))

    def lookback(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (q_idx // CHUNK - kv_idx // CHUNK <= 1)

    flex = torch.compile(flex_attention, dynamic=False)
    make_block_mask = torch.compile(create_block_mask)
    block_mask = make_block_mask(lookback, None, None, length, length, device="cuda")
    ours = attnc.torch.attention(q, k, v, kernel).float()
    theirs = flex(q, k, v, block_mask=block_mask).float()
    agree = ((ours - theirs).norm() / theirs.norm()).item()
    ms = {
        "attnc": triton.testing.do_bench(lambda: attnc.torch.attention(q, k, v, kernel), return_mode="median"),
        "FlexAttention": triton.testing.do_bench(lambda: flex(q, k, v, block_mask=block_mask), return_mode="median"),
        "FlexAttention + create_block_mask": triton.testing.do_bench(
            lambda: flex(q, k, v, block_mask=make_block_mask(lookback, None, None, length, length, device="cuda")),
            return_mode="median"),
    }
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        ms["cuDNN, full causal"] = triton.testing.do_bench(
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), return_mode="median")
    pairs = sum(min(t + 1, t % CHUNK + 1 + (CHUNK if t >= CHUNK else 0)) for t in range(length))
    print(f"  B={B}, {H} heads, L={length}, d={D}, bf16; {pairs / (length * (length + 1) / 2):.1%} of the causal pairs; "
          f"attnc vs FlexAttention output: relative difference {agree:.1e}")
    print(f"  {'':36s} {'ms':>8s} {'TFLOP/s':>8s} {'attnc is':>10s}")
    for name, t in ms.items():
        tflops = 4 * D * pairs * B * H / t / 1e9
        # cuDNN computes every causal pair: its TFLOP/s counts those.
        if name.startswith("cuDNN"):
            tflops = 4 * D * (length * (length + 1) // 2) * B * H / t / 1e9
        print(f"  {name:36s} {t:8.3f} {tflops:8.1f} {t / ms['attnc']:9.2f}x")
    return 0 if agree < 2e-2 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=32768, help="sequence length of the benchmark")
    ap.add_argument("--attnc", default=shutil.which("attnc"), help="the attnc command (default: on PATH)")
    args = ap.parse_args()
    if not args.attnc:
        sys.exit("no attnc command on PATH (pip install the wheel, or pass --attnc build/bin/attnc)")

    print("1. compile", SOURCE_FILE)
    module = attnc.compile(open(SOURCE_FILE).read(), options={"head_dims": "128", "dtypes": "bf16"}, verbose=True)
    kernel = module.variant("lookback")
    print("2. check against the float64 reference")
    failures = check_against_reference(kernel, args.attnc, torch.Generator().manual_seed(5))
    print("3. run in a model")
    failures += run_in_a_model(kernel)
    print("4. benchmark")
    failures += benchmark(kernel, args.length)
    print("lookback: all steps passed" if not failures else f"lookback: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
