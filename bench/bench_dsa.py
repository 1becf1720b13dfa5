#!/usr/bin/env python3
"""DSA on the GPU: attnc's select stage (indexer + top-k) and its attention
over the selection, beside dense causal attention of the same shape (cuDNN
SDPA) and the FP8 GEMM rate (torch._scaled_mm), in one process.

Usage (GPU machine): bench_dsa.py --ptx DSA.ptx [--lengths 16384,32768] [--stages-only] [--decode] [--json OUT]
DSA.ptx: bench/dsa_bench.attn compiled by attnc: `dsa` as examples/dsa.attn
(64 indexer heads of dim 128 in fp8, top 2048, causal) and `topk_only`, the
same top-k over other scores (a cheap select expression). The three stages
(select: the indexer; topk; attention) are timed apart by their kernels'
names. Shapes: V3.2's 128 query heads on one KV head at head
dim 128 (the language's kernels take one head dim for Q, K and V; V3.2's MLA
uses 576/512), and 16 heads for the sparse-attention target. Per-stage device
times come from the CUDA profiler (the kernels' own names): the select stage
may be several launches (chunks of row blocks).
--decode: a decode step instead, batch 32 (and MTP's 2 query rows) against
131072 cached keys each, beside the floor of a dense decode kernel: reading
a V3.2 cache (576 bf16 a token, MLA's latent and rope parts) once at the
copy bandwidth measured in the same process.
"""
import argparse, json, os, sys

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attnc  # noqa: E402


def timed(fn, reps=5):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def stage_times(fn):
    """Device milliseconds per kernel name of one call of fn."""
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    out = {}
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            out[e.name] = out.get(e.name, 0.0) + e.device_time / 1e3
    return out


def fp8_gemm_tflops(n=8192):
    a = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn)
    b = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn).t()
    one = torch.ones((), device="cuda")
    ms = timed(lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
    return 2 * n ** 3 / ms / 1e9


def topk_only_ms(kern, L, K):
    """Device ms of the topk stage of `topk_only` at causal length L."""
    dev = "cuda"
    q = torch.randn(1, 1, L, 128, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, 1, L, 128, device=dev, dtype=torch.bfloat16)
    idx = torch.empty(1, 1, L, K, device=dev, dtype=torch.int32)
    stages = stage_times(lambda: kern(q, k, k, indices=idx))
    return sum(t for n, t in stages.items() if n.endswith("_topk"))


def dsa_run(kern, B, Lq, Lk, Hq, D, K, HI, dI, reps):
    """Random inputs of a V3.2-like problem (one KV head, the fp8 indexer),
    the call, its mean time and its stages' device times: (tensors, total ms,
    select ms, topk ms, attention ms)."""
    dev = "cuda"
    q = torch.randn(B, Hq, Lq, D, device=dev, dtype=torch.bfloat16)
    k = torch.randn(B, 1, Lk, D, device=dev, dtype=torch.bfloat16)
    v = torch.randn(B, 1, Lk, D, device=dev, dtype=torch.bfloat16)
    qI = torch.randn(B, Lq, HI, dI, device=dev).to(torch.float8_e4m3fn)
    w = torch.randn(B, Lq, HI, device=dev) / HI
    kI = torch.randn(B, Lk, dI, device=dev).to(torch.float8_e4m3fn)
    out = torch.empty_like(q)
    lse = torch.empty(B, Hq, Lq, device=dev)
    idx = torch.empty(B, 1, Lq, K, device=dev, dtype=torch.int32)
    run = lambda: kern(q, k, v, indexer=(qI, w, kI), out=out, lse=lse, indices=idx)  # noqa: E731
    total = timed(run, reps=reps)
    stages = stage_times(run)
    sel_ms = sum(t for n, t in stages.items() if n.endswith("_select"))
    topk_ms = sum(t for n, t in stages.items() if n.endswith("_topk"))
    att_ms = sum(t for n, t in stages.items() if n.startswith("dsa_") and not n.endswith(("_select", "_topk")))
    return (q, k, v), total, sel_ms, topk_ms, att_ms


def case(kern, L, Hq, D, K, HI=64, dI=128, dense=True):
    (q, k, v), total, sel_ms, topk_ms, att_ms = dsa_run(kern, 1, L, L, Hq, D, K, HI, dI, reps=3)
    pairs_causal = L * (L + 1) / 2
    m = min(K, L)  # causal row t attends min(K, t + 1) keys
    selected = m * (m + 1) / 2 + (L - m) * K
    r = {"L": L, "Hq": Hq, "D": D, "K": K, "total_ms": total, "select_ms": sel_ms, "topk_ms": topk_ms,
         "attention_ms": att_ms,
         "indexer_tflops": 2 * pairs_causal * HI * dI / sel_ms / 1e9 if sel_ms else None,
         "attention_tflops_selected": 4 * selected * Hq * D / att_ms / 1e9 if att_ms else None}
    if dense:
        # cuDNN SDPA, causal, K/V expanded to the query heads (MQA).
        kd, vd = k.expand(1, Hq, L, D), v.expand(1, Hq, L, D)
        with torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.CUDNN_ATTENTION]):
            dms = timed(lambda: F.scaled_dot_product_attention(q, kd, vd, is_causal=True), reps=3)
        r["cudnn_causal_ms"] = dms
        r["speedup_vs_dense"] = dms / total
    return r


def copy_bandwidth(nbytes=4 << 30):
    """Device-to-device copy bandwidth in bytes/s (read + write)."""
    a = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = timed(lambda: b.copy_(a), reps=10)
    return 2 * nbytes / (ms / 1e3)


def decode_case(kern, B, Lq, Lk, K, Hq=128, D=128, HI=64, dI=128):
    """One decode step: Lq query rows (the last positions) per sequence."""
    _, total, sel_ms, topk_ms, att_ms = dsa_run(kern, B, Lq, Lk, Hq, D, K, HI, dI, reps=20)
    return {"B": B, "Lq": Lq, "Lk": Lk, "total_ms": total, "select_ms": sel_ms, "topk_ms": topk_ms,
            "attention_ms": att_ms}


def decode(kern, K):
    bw = copy_bandwidth()
    print(f"copy bandwidth (4 GiB device to device): {bw / 1e12:.2f} TB/s", flush=True)
    rows = []
    for Lq in (1, 2):
        r = decode_case(kern, 32, Lq, 131072, K)
        r["copy_bandwidth"] = bw
        r["dense_floor_ms"] = 32 * 131072 * 576 * 2 / bw * 1e3
        r["x_dense_floor"] = r["dense_floor_ms"] / r["total_ms"]
        rows.append(r)
        print(f"decode B=32 Lq={Lq} KV 131072 (H128 D128, indexer 64 x 128 fp8, top-{K}): step {r['total_ms']:.3f} ms "
              f"(select {r['select_ms']:.3f}, topk {r['topk_ms']:.3f}, attention {r['attention_ms']:.3f}); "
              f"a V3.2 cache read once {r['dense_floor_ms']:.3f} ms: x{r['x_dense_floor']:.2f}", flush=True)
    return rows


def stages_line(r, gemm):
    return (f"V3.2-like H128 D128 L={r['L']}: total {r['total_ms']:.1f} ms (select {r['select_ms']:.1f}, topk "
            f"{r['topk_ms']:.1f}, attention {r['attention_ms']:.1f}); indexer {r['indexer_tflops']:.0f} TF/s "
            f"({r['indexer_tflops'] / gemm:.2f}x FP8 GEMM)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptx", required=True)
    ap.add_argument("--lengths", default="16384,32768,65536")
    ap.add_argument("--json")
    ap.add_argument("--decode", action="store_true", help="a decode step (batch 32, KV 131072) instead")
    ap.add_argument("--stages-only", action="store_true",
                    help="the V3.2-like stages' times alone: no dense anchor, topk_only or 16-head case (A/B of builds)")
    args = ap.parse_args()
    module = attnc.load(args.ptx)
    kern = module.variant("dsa")
    topk_only = module.variant("topk_only") if "topk_only" in module.variants else None
    K = kern.spec["select"]["topk"]
    if args.decode:
        rows = decode(kern, K)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
        return
    rows = []
    gemm = fp8_gemm_tflops()
    print(f"FP8 GEMM (torch._scaled_mm 8192^3): {gemm:.0f} TF/s")
    for L in [int(x) for x in args.lengths.split(",")]:
        if args.stages_only:
            r = case(kern, L, 128, 128, K, dense=False)
            rows.append(r)
            print(stages_line(r, gemm), flush=True)
            continue
        r = case(kern, L, 128, 128, K)
        r["fp8_gemm_tflops"] = gemm
        if topk_only:
            r["topk_only_topk_ms"] = topk_only_ms(topk_only, L, K)
        rows.append(r)
        print(f"{stages_line(r, gemm)}; attention {r['attention_tflops_selected']:.0f} TF/s on selected pairs; "
              f"cuDNN dense causal {r['cudnn_causal_ms']:.1f} ms: x{r['speedup_vs_dense']:.2f}", flush=True)
        if topk_only:
            print(f"  topk_only's topk stage (other scores): {r['topk_only_topk_ms']:.1f} ms", flush=True)
    r = case(kern, 65536, 16, 128, K, dense=False) if not args.stages_only else None
    if r:
        rows.append(r)
        print(f"H16 D128 one KV head L=65536 top-{K}: attention over the selection {r['attention_ms']:.2f} ms "
              f"({r['attention_tflops_selected']:.0f} TF/s), select {r['select_ms']:.1f} ms, topk {r['topk_ms']:.1f} ms",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
