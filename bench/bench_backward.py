#!/usr/bin/env python3
"""attnc's gradient kernels against cuDNN SDPA's and FlexAttention's backward, in one process.

Usage (GPU machine): bench_backward.py --ptx build-ptx/bench/patterns_backward.ptx [--json OUT]
The PTX is bench/patterns.attn compiled with --backward=on (scripts/build_ptx.sh).
Times the backward pass alone: ours is Kernel.backward (the dQ kernel, then the
dK/dV kernel, with the forward's out and lse); the anchors' is
torch.autograd.grad over a retained forward graph (cuDNN: SDPBackend.CUDNN_ATTENTION;
FlexAttention: torch.compile'd, its block mask built outside the timing).
Random bf16 inputs, median of many runs (triton.testing.do_bench). Effective
TFLOP/s = 2.5 * 4 * D * allowed pairs * B * H / time (five matrix products
against the forward's two). Ratios are anchor time / ours (> 1: we are faster).
"""
import argparse, json, os, sys

import torch
import torch.nn.functional as F
import triton.testing as tt
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
sys.path.insert(0, os.path.dirname(__file__))
import attnc  # noqa: E402

from bench_attnc import document_ids, pairs_causal, pairs_sliding  # noqa: E402

dev = "cuda"


def bench(fn, rep=50):
    return tt.do_bench(fn, warmup=10, rep=rep, return_mode="median")


def anchor_backward(forward, q, k, v, dout):
    """ms of the backward of forward(q, k, v) (autograd, graph retained)."""
    qg, kg, vg = (t.detach().clone().requires_grad_() for t in (q, k, v))
    o = forward(qg, kg, vg)
    return bench(lambda: torch.autograd.grad(o, (qg, kg, vg), dout, retain_graph=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptx", required=True)
    ap.add_argument("--json")
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    torch.manual_seed(0)
    mod = attnc.load(args.ptx)
    torch._dynamo.config.cache_size_limit = 64
    # The anchors' backward is timed by calling it again on a retained graph,
    # which compiled backwards with donated buffers refuse.
    torch._functorch.config.donated_buffer = False
    flex = torch.compile(flex_attention, dynamic=False)
    print("device", torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    L2 = 32768
    doc = document_ids(L2)
    doc_d = doc.to(dev)
    counts = torch.bincount(doc.long()).double()
    cases = [  # name, variant, B, H, L, D, flex mask, pairs, cuDNN causal flag (None: no cuDNN), inputs
        ("causal", "causal", 1, 16, 16384, 128, lambda b, h, qi, ki: qi >= ki, pairs_causal(16384), True, {}),
        ("dense", "dense", 1, 16, 16384, 128, None, 16384 * 16384, False, {}),
        ("causal_d64", "causal", 1, 32, 16384, 64, lambda b, h, qi, ki: qi >= ki, pairs_causal(16384), True, {}),
        ("dense_b4_4096", "dense", 4, 16, 4096, 128, None, 4096 * 4096, False, {}),
        ("sliding4096", "sliding4096", 1, 16, L2, 128, lambda b, h, qi, ki: (qi >= ki) & (qi - ki < 4096),
         pairs_sliding(L2, 4096), None, {}),
        ("documents", "documents", 1, 16, L2, 128, lambda b, h, qi, ki: (doc_d[qi] == doc_d[ki]) & (qi >= ki),
         int(((counts * (counts + 1)) / 2).sum().item()), None, {"doc": doc_d[None].contiguous()}),
    ]
    wanted = set(args.cases.split(",")) if args.cases else None
    rows = []
    for name, variant, B, H, L, D, mask, pairs, cudnn_causal, inputs in cases:
        if wanted and name not in wanted:
            continue
        q, k, v, dout = (torch.randn(B, H, L, D, device=dev, dtype=torch.bfloat16) for _ in range(4))
        kern = mod.variant(variant)
        out, lse = kern(q, k, v, inputs=inputs)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        ms = bench(lambda: kern.backward(q, k, v, out, lse, dout, inputs=inputs, dq=dq, dk=dk, dv=dv))
        flops = 2.5 * 4 * B * H * pairs * D
        row = dict(case=name, B=B, H=H, L=L, D=D, ours_ms=ms, ours_tflops=flops / ms / 1e9)
        if cudnn_causal is not None:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                ms_c = anchor_backward(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=cudnn_causal),
                                       q, k, v, dout)
            row.update(cudnn_ms=ms_c, cudnn_tflops=flops / ms_c / 1e9, vs_cudnn=ms_c / ms)
        bm = create_block_mask(mask, None, None, L, L, device=dev, _compile=True) if mask else None
        ms_f = anchor_backward(lambda a, b, c: flex(a, b, c, block_mask=bm), q, k, v, dout)
        row.update(flex_ms=ms_f, flex_tflops=flops / ms_f / 1e9, vs_flex=ms_f / ms)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del q, k, v, dout, out, lse, dq, dk, dv
        torch.cuda.empty_cache()
    print("\nbackward only, bf16; ratios: anchor time / ours")
    print("%-14s %6s %4s %9s %10s %11s %10s   %s" % ("case", "L", "D", "ours ms", "ours TF/s", "cuDNN TF/s",
                                                   "flex TF/s", "ratio"))
    for r in rows:
        sp = ("x%.2f cuDNN, " % r["vs_cudnn"] if "vs_cudnn" in r else "") + "x%.2f flex" % r["vs_flex"]
        print("%-14s %6d %4d %9.3f %10.1f %11s %10.1f   %s" % (
            r["case"], r["L"], r["D"], r["ours_ms"], r["ours_tflops"],
            "%.1f" % r["cudnn_tflops"] if "cudnn_tflops" in r else "-", r["flex_tflops"], sp))
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
