#!/usr/bin/env python3
"""attnc's gradient kernels against cuDNN SDPA's and FlexAttention's backward, in one process.

Usage (GPU machine): bench_backward.py --ptx build-ptx/bench/patterns_backward.ptx [--cases a,b] [--json OUT]
                                       [--alt LABEL=PTX ...] [--anchors all|flex|none]
The PTX is bench/patterns.attn compiled with --backward=on (scripts/build_ptx.sh).
Times the backward pass alone: ours is Kernel.backward (the dQ kernel, then the
dK/dV kernel, with the forward's out and lse; with a summary stage first for
documents); the anchors' is torch.autograd.grad over a retained forward graph
(cuDNN: SDPBackend.CUDNN_ATTENTION; FlexAttention: torch.compile'd, its block
mask built outside the timing). Then forward + backward (ours: the forward
kernel and Kernel.backward; the anchors': the forward and autograd.grad, no
graph kept). Random bf16 inputs, median of many runs (triton.testing.do_bench).
Effective TFLOP/s = 2.5 * 4 * D * allowed pairs * B * Hq / time for the
backward (five matrix products against the forward's two), 3.5 * 4 * ... for
forward + backward. Ratios are anchor time / ours (> 1: we are faster).
Each case also compares our dQ, dK, dV with FlexAttention's (relative L2,
both bf16: their rounding, about 3e-3; a wrong tile skip shows as far more)
and fails the run above 2e-2.
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
    """(ms of the backward of forward(q, k, v) (autograd, graph retained),
    ms of forward + backward, the gradients)."""
    qg, kg, vg = (t.detach().clone().requires_grad_() for t in (q, k, v))
    o = forward(qg, kg, vg)
    grads = torch.autograd.grad(o, (qg, kg, vg), dout, retain_graph=True)
    ms = bench(lambda: torch.autograd.grad(o, (qg, kg, vg), dout, retain_graph=True))
    del o
    ms_fb = bench(lambda: torch.autograd.grad(forward(qg, kg, vg), (qg, kg, vg), dout))
    return ms, ms_fb, grads


def rel_l2(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptx", required=True)
    ap.add_argument("--json")
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--anchors", choices=("all", "flex", "none"), default="all",
                    help="which anchors to time beside ours (none: ours only, e.g. to compare two builds)")
    ap.add_argument("--alt", action="append", default=[], metavar="LABEL=PTX",
                    help="also time the backward of another build of the same patterns (repeatable), "
                         "e.g. the previous compiler's or --backend=mma-sync")
    args = ap.parse_args()
    torch.manual_seed(0)
    mod = attnc.load(args.ptx)
    alts = [(a.split("=", 1)[0], attnc.load(a.split("=", 1)[1])) for a in args.alt]
    torch._dynamo.config.cache_size_limit = 64
    # The anchors' backward is timed by calling it again on a retained graph,
    # which compiled backwards with donated buffers refuse.
    torch._functorch.config.donated_buffer = False
    flex = torch.compile(flex_attention, dynamic=False)
    print("device", torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    docs = {}  # L -> (ids on the GPU, allowed pairs)
    for L in (32768, 131072):
        ids = document_ids(L)
        counts = torch.bincount(ids.long()).double()
        docs[L] = (ids.to(dev), int(((counts * (counts + 1)) / 2).sum().item()))

    def documents(L):
        doc_d = docs[L][0]
        return (lambda b, h, qi, ki: (doc_d[qi] == doc_d[ki]) & (qi >= ki)), docs[L][1], {"doc": doc_d[None].contiguous()}

    def sliding(w):
        return lambda b, h, qi, ki: (qi >= ki) & (qi - ki < w)

    causal = lambda b, h, qi, ki: qi >= ki  # noqa: E731
    cases = [  # name, variant, B, Hq, Hkv, L, D, (flex mask, pairs, inputs), cuDNN causal flag (None: no cuDNN)
        ("causal", "causal", 1, 16, 16, 16384, 128, (causal, pairs_causal(16384), {}), True),
        ("dense", "dense", 1, 16, 16, 16384, 128, (None, 16384 * 16384, {}), False),
        ("causal_d64", "causal", 1, 32, 32, 16384, 64, (causal, pairs_causal(16384), {}), True),
        ("causal_d256", "causal", 1, 8, 8, 16384, 256, (causal, pairs_causal(16384), {}), True),
        ("dense_b4_4096", "dense", 4, 16, 16, 4096, 128, (None, 4096 * 4096, {}), False),
        ("sliding4096", "sliding4096", 1, 16, 16, 32768, 128, (sliding(4096), pairs_sliding(32768, 4096), {}), None),
        ("documents", "documents", 1, 16, 16, 32768, 128, documents(32768), None),
        # GQA 16:1: 16 x 512 (head, query tile) pairs a dK/dV CTA, past the
        # bitmaps' window of 4096 (the pairs beyond it are classified one by one).
        ("documents_gqa16", "documents", 1, 32, 2, 32768, 128, documents(32768), None),
        ("causal_gqa16", "causal", 1, 32, 2, 32768, 128, (causal, pairs_causal(32768), {}), None),
        # The long-context targets (forward + backward >= 1.5x FlexAttention).
        ("sliding1024_128k", "sliding1024", 1, 16, 16, 131072, 128,
         (sliding(1024), pairs_sliding(131072, 1024), {}), None),
        ("documents_128k", "documents", 1, 16, 16, 131072, 128, documents(131072), None),
    ]
    wanted = set(args.cases.split(",")) if args.cases else None
    rows, disagreements = [], 0
    for name, variant, B, H, Hkv, L, D, (mask, pairs, inputs), cudnn_causal in cases:
        if wanted and name not in wanted:
            continue
        q, dout = (torch.randn(B, H, L, D, device=dev, dtype=torch.bfloat16) for _ in range(2))
        k, v = (torch.randn(B, Hkv, L, D, device=dev, dtype=torch.bfloat16) for _ in range(2))
        kern = mod.variant(variant)
        out, lse = kern(q, k, v, inputs=inputs)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        ms = bench(lambda: kern.backward(q, k, v, out, lse, dout, inputs=inputs, dq=dq, dk=dk, dv=dv))

        def ours_fwd_bwd():
            o, l = kern(q, k, v, inputs=inputs)
            kern.backward(q, k, v, o, l, dout, inputs=inputs, dq=dq, dk=dk, dv=dv)
        ms_fb = bench(ours_fwd_bwd)
        flops = 2.5 * 4 * B * H * pairs * D
        row = dict(case=name, B=B, H=H, Hkv=Hkv, L=L, D=D, ours_ms=ms, ours_tflops=flops / ms / 1e9,
                   ours_fwd_bwd_ms=ms_fb, ours_fwd_bwd_tflops=flops * 1.4 / ms_fb / 1e9)
        for label, alt in alts:  # the other builds' backward, from our forward's out and lse
            ak = alt.variant(variant)
            row.setdefault("alt_ms", {})[label] = bench(
                lambda: ak.backward(q, k, v, out, lse, dout, inputs=inputs, dq=dq, dk=dk, dv=dv))
        if cudnn_causal is not None and args.anchors == "all":
            try:
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    ms_c, fb_c, _ = anchor_backward(
                        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=cudnn_causal), q, k, v, dout)
                row.update(cudnn_ms=ms_c, cudnn_tflops=flops / ms_c / 1e9, vs_cudnn=ms_c / ms,
                           cudnn_fwd_bwd_ms=fb_c, fwd_bwd_vs_cudnn=fb_c / ms_fb)
            except RuntimeError as e:  # e.g. no cuDNN backward at this head dim
                print("cuDNN: %s: %s" % (name, str(e).splitlines()[0]), flush=True)
        if args.anchors == "none":
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        bm = create_block_mask(mask, None, None, L, L, device=dev, _compile=True) if mask else None
        ms_f, fb_f, flex_grads = anchor_backward(lambda a, b, c: flex(a, b, c, block_mask=bm, enable_gqa=H != Hkv),
                                                 q, k, v, dout)
        row.update(flex_ms=ms_f, flex_tflops=flops / ms_f / 1e9, vs_flex=ms_f / ms,
                   flex_fwd_bwd_ms=fb_f, fwd_bwd_vs_flex=fb_f / ms_fb)
        kern.backward(q, k, v, out, lse, dout, inputs=inputs, dq=dq, dk=dk, dv=dv)
        row["vs_flex_grads_rel_l2"] = max(rel_l2(ours, theirs) for ours, theirs in zip((dq, dk, dv), flex_grads))
        if not row["vs_flex_grads_rel_l2"] <= 2e-2:
            disagreements += 1
            print("FAIL %s: dQ/dK/dV differ from FlexAttention's by %.2e (relative L2)"
                  % (name, row["vs_flex_grads_rel_l2"]), flush=True)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del q, k, v, dout, out, lse, dq, dk, dv, flex_grads
        torch.cuda.empty_cache()
    print("\nbf16; ratios: anchor time / ours; grads: max relative L2 of our dQ, dK, dV against FlexAttention's")
    print("%-17s %6s %4s %5s %9s %10s %11s %10s  %-26s %12s  %-26s %s" % (
        "case", "L", "D", "Hq:kv", "bwd ms", "bwd TF/s", "cuDNN TF/s", "flex TF/s", "bwd ratio", "fwd+bwd ms",
        "fwd+bwd ratio", "grads"))
    for r in [r for r in rows if "vs_flex" in r]:
        sp = ("x%.2f cuDNN, " % r["vs_cudnn"] if "vs_cudnn" in r else "") + "x%.2f flex" % r["vs_flex"]
        fb = ("x%.2f cuDNN, " % r["fwd_bwd_vs_cudnn"] if "fwd_bwd_vs_cudnn" in r else "") + \
            "x%.2f flex" % r["fwd_bwd_vs_flex"]
        print("%-17s %6d %4d %5s %9.3f %10.1f %11s %10.1f  %-26s %12.3f  %-26s %.1e" % (
            r["case"], r["L"], r["D"], "%d:%d" % (r["H"], r["Hkv"]), r["ours_ms"], r["ours_tflops"],
            "%.1f" % r["cudnn_tflops"] if "cudnn_tflops" in r else "-", r["flex_tflops"], sp,
            r["ours_fwd_bwd_ms"], fb, r["vs_flex_grads_rel_l2"]))
    for label, _ in alts:
        print("backward of --alt %s (ms, its TF/s, ours / it):" % label)
        for r in rows:
            a = r["alt_ms"][label]
            print("  %-17s %9.3f %8.1f  x%.2f" % (r["case"], a, r["ours_tflops"] * r["ours_ms"] / a, a / r["ours_ms"]))
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)
    if disagreements:
        sys.exit(1)


if __name__ == "__main__":
    main()
