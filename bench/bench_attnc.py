#!/usr/bin/env python3
"""attnc's kernels against cuDNN SDPA and FlexAttention, in one process.

Usage (GPU machine): bench_attnc.py --ptx build-ptx/bench/patterns.ptx [--json OUT]
The PTX is bench/patterns.attn compiled by attnc on a build machine
(scripts/gpu_check.sh does both). Cases follow ../shared/performance.md:
dense and causal at L=16384 (B=1, 16 heads, d=128, bf16); sliding windows
1024 and 4096, ModernBERT local (|q-k| <= 64) and packed documents (mean 2K)
at L=131072. Random inputs, warm-up, median of many runs
(triton.testing.do_bench). Effective TFLOP/s = 4 * D * allowed pairs * B * H / time.
Also dense d=64 and d=256, causal GQA 32:8, dense B=4 at L=4096 and causal
B=2 at L=5000 (the Hopper issue's table); the PTX needs head dims 64, 128
and 256 (scripts/build_ptx.sh builds them).
Prints one table; ratios are ours / anchor (time ratio anchor/ours).
--alt LABEL=PTX (repeatable) also times other builds of the same patterns
(e.g. another --tile) on every case in the same run; bench/plot_bench.py
draws the JSON.
"""
import argparse, json, math, os, sys, time

import torch
import torch.nn.functional as F
import triton.testing as tt
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attnc  # noqa: E402

dev = "cuda"


def bench(fn, rep=100, warmup=25):
    return tt.do_bench(fn, warmup=warmup, rep=rep, return_mode="median")


def pairs_causal(L):
    return L * (L + 1) // 2


def pairs_sliding(L, w):
    return w * (w + 1) // 2 + (L - w) * w


def pairs_bidir(L, r):
    return L * (2 * r + 1) - r * (r + 1)


def document_ids(L):
    """The packed-documents case's ids: documents of 256 to 3839 tokens
    (mean about 2K), seeded, as int32 [L] on the CPU."""
    lens = torch.randint(256, 3840, (L // 256,), generator=torch.Generator().manual_seed(1))
    ends = torch.cumsum(lens, 0)
    ends = ends[ends < L]
    doc = torch.zeros(L, dtype=torch.int32)
    for e in ends.tolist():
        doc[e:] += 1
    return doc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptx", required=True)
    ap.add_argument("--json")
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--cases", help="comma-separated case names to run (default: all)")
    ap.add_argument("--alt", action="append", default=[], metavar="LABEL=PTX",
                    help="also time these kernels (e.g. another --tile) on every case; repeatable")
    args = ap.parse_args()
    torch.manual_seed(0)
    mod = attnc.load(args.ptx)
    alts = [(a.split("=", 1)[0], attnc.load(a.split("=", 1)[1])) for a in args.alt]
    # One compiled FlexAttention per shape and mask: more than dynamo's
    # default 8 recompilations, after which it would run eagerly (O(L^2) memory).
    torch._dynamo.config.cache_size_limit = 64
    torch._dynamo.config.accumulated_cache_size_limit = 512
    flex = torch.compile(flex_attention, dynamic=False)
    rows = []

    def time_alts(name, call, rep=100):
        """TFLOP/s-free timings of the --alt builds: {label: ms}."""
        return {label: bench(lambda: call(m.variant(name)), rep=rep) for label, m in alts}

    def rec(**kw):
        rows.append(kw)
        print(json.dumps(kw), flush=True)

    D, H = 128, 16
    print("device", torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)

    # Dense and causal against cuDNN SDPA and FlexAttention: performance.md's
    # L = 16384 rows (B=1, 16 heads, d=128), then the Hopper issue's other
    # shapes: d=64 (32 heads) and d=256 (8 heads), GQA 32:8, a batch of 4 at
    # L=4096, and an odd length (B=2, L=5000).
    wanted = set(args.cases.split(",")) if args.cases else None
    shapes = [  # name, variant, B, Hq, Hkv, L, D
        ("dense", "dense", 1, 16, 16, 16384, 128),
        ("causal", "causal", 1, 16, 16, 16384, 128),
        ("dense_d64", "dense", 1, 32, 32, 16384, 64),
        ("dense_d256", "dense", 1, 8, 8, 16384, 256),
        ("causal_gqa32_8", "causal", 1, 32, 8, 16384, 128),
        ("dense_b4_4096", "dense", 4, 16, 16, 4096, 128),
        ("causal_b2_5000", "causal", 2, 16, 16, 5000, 128),
    ]
    for name, variant, B, Hq, Hkv, L, Dh in shapes:
        if wanted and name not in wanted:
            continue
        causal = variant == "causal"
        q = torch.randn(B, Hq, L, Dh, device=dev, dtype=torch.bfloat16)
        k = torch.randn(B, Hkv, L, Dh, device=dev, dtype=torch.bfloat16)
        v = torch.randn_like(k)
        out = torch.empty_like(q)
        lse = torch.empty(B, Hq, L, device=dev, dtype=torch.float32)
        pairs = pairs_causal(L) if causal else L * L
        flops = 4 * B * Hq * pairs * Dh
        kern = mod.variant(variant)
        ms = bench(lambda: kern(q, k, v, out=out, lse=lse))
        # cuDNN with K/V expanded to every query head where it takes no GQA
        # (the expansion is outside the timing).
        kc, vc = (k, v) if Hq == Hkv else (k.repeat_interleave(Hq // Hkv, 1), v.repeat_interleave(Hq // Hkv, 1))
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            ms_c = bench(lambda: F.scaled_dot_product_attention(q, kc, vc, is_causal=causal))
        del kc, vc
        bm = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, L, L, device=dev, _compile=True) if causal else None
        gqa = Hq != Hkv
        flex(q, k, v, block_mask=bm, enable_gqa=gqa)
        ms_f = bench(lambda: flex(q, k, v, block_mask=bm, enable_gqa=gqa))
        alt = time_alts(variant, lambda kr: kr(q, k, v, out=out, lse=lse))
        rec(case=name, L=L, B=B, Hq=Hq, Hkv=Hkv, D=Dh, ours_ms=ms, ours_tflops=flops / ms / 1e9, alt_ms=alt,
            cudnn_ms=ms_c, cudnn_tflops=flops / ms_c / 1e9, flex_ms=ms_f, flex_tflops=flops / ms_f / 1e9,
            vs_cudnn=ms_c / ms, vs_flex=ms_f / ms)
        del q, k, v, out, lse
        torch.cuda.empty_cache()

    if not args.skip_long:
        L = 131072
        q = torch.randn(1, H, L, D, device=dev, dtype=torch.bfloat16)
        k = torch.randn_like(q)
        v = torch.randn_like(q)
        out = torch.empty_like(q)
        lse = torch.empty(1, H, L, device=dev, dtype=torch.float32)
        doc = document_ids(L)
        doc_d = doc.to(dev)
        counts = torch.bincount(doc.long()).double()
        cases = [
            ("sliding1024", lambda b, h, qi, ki: (qi >= ki) & (qi - ki < 1024), pairs_sliding(L, 1024), {}),
            ("sliding4096", lambda b, h, qi, ki: (qi >= ki) & (qi - ki < 4096), pairs_sliding(L, 4096), {}),
            ("modernbert_local", lambda b, h, qi, ki: (qi - ki).abs() <= 64, pairs_bidir(L, 64), {}),
            ("documents", lambda b, h, qi, ki: (doc_d[qi] == doc_d[ki]) & (qi >= ki),
             int(((counts * (counts + 1)) / 2).sum().item()), {"doc": doc_d[None].contiguous()}),
        ]
        for name, mm, pairs, inputs in cases:
            if wanted and name not in wanted:
                continue
            flops = 4 * H * pairs * D
            kern = mod.variant(name)
            ms = bench(lambda: kern(q, k, v, inputs=inputs, out=out, lse=lse), rep=50)
            bm = create_block_mask(mm, None, None, L, L, device=dev, _compile=True)
            flex(q, k, v, block_mask=bm)
            ms_f = bench(lambda: flex(q, k, v, block_mask=bm), rep=50)
            alt = time_alts(name, lambda kr: kr(q, k, v, inputs=inputs, out=out, lse=lse), rep=50)
            rec(case=name, L=L, ours_ms=ms, ours_tflops=flops / ms / 1e9, alt_ms=alt, flex_ms=ms_f,
                flex_tflops=flops / ms_f / 1e9, vs_flex=ms_f / ms)
    print("\n%-18s %7s %10s %10s %10s %10s %10s" % ("case", "L", "ours ms", "ours TF/s", "cuDNN TF/s", "flex TF/s",
                                                   "speedup"))
    for r in rows:
        sp = "x%.2f cuDNN, x%.2f flex" % (r["vs_cudnn"], r["vs_flex"]) if "vs_cudnn" in r else "x%.2f flex" % r["vs_flex"]
        print("%-18s %7d %10.3f %10.1f %10s %10.1f   %s" % (r["case"], r["L"], r["ours_ms"], r["ours_tflops"],
                                                         "%.1f" % r["cudnn_tflops"] if "cudnn_tflops" in r else "-",
                                                         r["flex_tflops"], sp))
        for label, ms in r["alt_ms"].items():
            print("  %-16s %7s %10.3f %10.1f" % (label, "", ms, r["ours_tflops"] * r["ours_ms"] / ms))
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
