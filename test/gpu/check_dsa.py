#!/usr/bin/env python3
"""GPU correctness of the selecting variants' kernels (DSA: the select stage
and the attention over the selection) against the float64 reference.

Usage (on the GPU machine; PTX compiled beforehand by attnc):
  check_dsa.py --ptx DSA.ptx --src DSA.attn --attnc BUILD/bin/attnc [--quick] [--json OUT]

For every variant of the module (test/gpu/dsa_cases.attn: the indexer in fp8,
bf16 and fp16, windows, documents, a sink with a score rule, ALiBi (a score
rule reading the row's head), selection by i64 and f32 expressions) over a matrix of shapes (odd lengths, qlen != klen,
q_offset < 0 with empty rows, explicit offsets, batch 2, MQA with 16 and 128
heads, GQA, head dims 64/128/256, one-query decode, K above some rows'
allowed keys), with random inputs and outputs poisoned before the launch:
  1. the indices: every KV group's row the same, ascending, each key once and
     allowed, -1 only after the last; as a set equal to the reference's,
     except that where scores tie within rounding (indexer: 1e-5 of the
     row's score scale; fp8 on sm_90a's wgmma: 2^-12 of its sum of absolute
     products) a key may stand in for another of the same score:
     every chosen key must then score at least the reference's K-th best
     score minus the tolerance, and as many keys must be chosen;
  2. O and LSE against the reference attending over the kernel's own
     selection (`attnc run --reference --selection`), with the tolerances of
     reference_compare.py.
Prints one line per case and a summary; exits 1 on any failure.
"""
import argparse, json, os, subprocess, sys, tempfile, time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
sys.path.insert(0, os.path.dirname(__file__))
import attnc  # noqa: E402

from reference_compare import TORCH_DT, compare, run_reference, save_npy  # noqa: E402

INDEXER_DT = {"fp8_e4m3": torch.float8_e4m3fn, "bf16": torch.bfloat16, "fp16": torch.float16}


def cases(quick):
    """(B, Hq, Hkv, Lq, Lk, D, dtype, q_offset, k_offset)."""
    out = [
        (1, 16, 1, 200, 200, 128, "bf16", None, None),   # MQA, 16 heads
        (2, 8, 2, 77, 333, 64, "fp16", None, None),      # batch 2, GQA 4:1, qlen != klen
        (1, 2, 1, 1, 3000, 128, "bf16", None, None),     # decode: one query, a long cache
        (3, 16, 1, 2, 6000, 128, "bf16", None, None),    # decode batch, 2 rows (MTP)
    ]
    if not quick:
        out += [
            (1, 128, 1, 40, 1500, 64, "bf16", None, None),  # V3.2's 128 heads: two CTAs a row
            (1, 4, 4, 130, 130, 256, "bf16", None, None),   # head dim 256, one head a group
            (1, 4, 2, 300, 100, 64, "fp16", None, None),    # qlen > klen: q_offset < 0, empty rows
            (1, 3, 1, 150, 500, 128, "fp16", 600, 50),      # explicit offsets, a group of 3
            (2, 2, 1, 1000, 1000, 64, "bf16", None, None),  # K = 64 of up to 1000 keys
            (2, 128, 1, 1, 20000, 64, "fp16", None, None),  # decode, 128 heads, a long row
        ]
    return out


def documents(B, positions, gen):
    doc = torch.zeros(B, positions, dtype=torch.int32)
    for b in range(B):
        pos, d = 0, 0
        while pos < positions:
            n = int(torch.randint(1, max(2, positions // 3), (1,), generator=gen))
            doc[b, pos:pos + n] = d
            pos, d = pos + n, d + 1
    return doc


# fp8 indexers run on sm_90a's fp8 wgmma, whose accumulation keeps about 14
# bits (DeepSeek-V3's report, section 3.3.2), not fp32's: a key may then
# stand in for another within 2^-12 of the row's sum of absolute products.
FP8_ACCUMULATION = 2.0 ** -12


def indexer_scores(qI, w, kI, fp8):
    """I[b, t, s] in float64 and the per-row tolerance of its rounding:
    1e-5 of the row's score scale (max over s of sum_j |w| |q.k|), for fp8
    at least FP8_ACCUMULATION of its sum of absolute products (max over s of
    sum_j |w| sum_i |q_i k_i|)."""
    q = qI.double().cpu().numpy()
    k = kI.double().cpu().numpy()
    wn = w.double().cpu().numpy()
    dots = np.einsum("btjd,bsd->btjs", q, k)
    scores = np.einsum("btj,btjs->bts", wn, np.maximum(dots, 0.0))
    tol = 1e-5 * np.einsum("btj,btjs->bts", np.abs(wn), np.abs(dots)).max(axis=2)
    if fp8:
        products = np.einsum("btjd,bsd->btjs", np.abs(q), np.abs(k))
        tol = np.maximum(tol, FP8_ACCUMULATION * np.einsum("btj,btjs->bts", np.abs(wn), products).max(axis=2))
    return scores, np.maximum(tol, 1e-30)


def check_indices(gpu_idx, ref_idx, K, scores, tols):
    """Problems with the kernel's indices [B, Hkv, Lq, K] (int32), [] if none,
    and the largest shortfall of a chosen key below the K-th best score in
    units of the row's tolerance (0 where the sets agree)."""
    B, Hkv, Lq, _ = gpu_idx.shape
    problems, shortfall = [], 0.0
    for b in range(B):
        for g in range(1, Hkv):
            if not np.array_equal(gpu_idx[b, g], gpu_idx[b, 0]):
                problems.append(f"b{b}: group {g}'s indices differ from group 0's")
                break
        for t in range(Lq):
            row = gpu_idx[b, 0, t]
            n = int((row >= 0).sum())
            if n and (row[:n] < 0).any() or (row[n:] != -1).any():
                problems.append(f"b{b} row {t}: -1 before a key: {row.tolist()[:16]}")
            elif n > 1 and not (np.diff(row[:n]) > 0).all():
                problems.append(f"b{b} row {t}: keys not strictly ascending")
            mine = set(int(x) for x in row[:n])
            ref = set(int(x) for x in ref_idx[b, 0, t] if x >= 0)
            if mine == ref:
                continue
            if len(mine) != len(ref):
                problems.append(f"b{b} row {t}: {len(mine)} keys chosen, the reference {len(ref)}")
            elif scores is None:
                problems.append(f"b{b} row {t}: other keys than the reference's: {sorted(mine ^ ref)[:8]}")
            else:
                kth = min(scores[b, t, c] for c in ref)
                tol = tols[b, t]
                worst = min(scores[b, t, c] for c in mine)
                shortfall = max(shortfall, (kth - worst) / tol)
                if worst < kth - tol:
                    problems.append(f"b{b} row {t}: key scoring {worst:.6g} chosen below the K-th best {kth:.6g} "
                                    f"({(kth - worst) / tol:.2f} tolerances)")
            if len(problems) > 5:
                return problems, shortfall
    return problems, shortfall


def run_case(kernel, spec, src, variant, case, attnc_bin, tmp, gen):
    B, Hq, Hkv, Lq, Lk, D, dt, qo, ko = case
    tdt = TORCH_DT[dt]
    q = torch.randn(B, Hq, Lq, D, generator=gen).to(tdt).cuda()
    k = torch.randn(B, Hkv, Lk, D, generator=gen).to(tdt).cuda()
    v = torch.randn(B, Hkv, Lk, D, generator=gen).to(tdt).cuda()
    q_off = qo if qo is not None else Lk - Lq
    k_off = ko if ko is not None else 0
    inputs = {}
    if any(i["name"] == "doc" for i in spec.get("inputs", [])):
        if q_off < 0:
            return None, "skipped: a token input needs q_offset >= 0"
        inputs["doc"] = documents(B, max(q_off + Lq, k_off + Lk), gen)
    if any(i["name"] == "slope" for i in spec.get("inputs", [])):
        inputs["slope"] = (torch.rand(Hq, generator=gen) * 0.5).float()
    sinks = (torch.randn(Hq, generator=gen) * 2).float().cuda() if spec.get("sink") else None
    sel = spec["select"]
    K = sel["topk"]
    indexer, ref_indexer, scores, tols = None, None, None, None
    if sel.get("indexer"):
        ix = sel["indexer"]
        HI, dI, idt = ix["heads"], ix["dim"], INDEXER_DT[ix["dtype"]]
        qI = torch.randn(B, Lq, HI, dI, generator=gen).to(idt).cuda()
        w = (torch.randn(B, Lq, HI, generator=gen) / HI).float().cuda()
        kI = torch.randn(B, Lk, dI, generator=gen).to(idt).cuda()
        indexer = (qI, w, kI)
        # The reference reads the values the kernel reads (fp8 as their f32 values).
        paths = []
        for name, t in (("qI", qI), ("w", w), ("kI", kI)):
            p = os.path.join(tmp, name + ".npy")
            save_npy(p, t.float() if t.dtype == torch.float8_e4m3fn else t)
            paths.append(p)
        ref_indexer = ",".join(paths)
        scores, tols = indexer_scores(qI, w, kI, fp8=idt == torch.float8_e4m3fn)
    out = torch.full_like(q, float("nan"))
    lse = torch.full((B, Hq, Lq), float("nan"), device="cuda", dtype=torch.float32)
    idx = torch.full((B, Hkv, Lq, K), -7, device="cuda", dtype=torch.int32)
    gpu_inputs = {n: t.cuda() for n, t in inputs.items()}
    kernel(q, k, v, sinks=sinks, inputs=gpu_inputs, indexer=indexer, q_offset=qo, k_offset=ko, out=out, lse=lse,
           indices=idx)
    torch.cuda.synchronize()
    gpu_idx = idx.cpu().numpy()

    extra = ["--indexer", ref_indexer] if ref_indexer else []
    ref_idx_path = os.path.join(tmp, "ref_idx.npy")
    ro, rl, cmd = run_reference(attnc_bin, src, variant, q, k, v, tmp, q_off=q_off, k_off=k_off, inputs=inputs,
                                sinks=sinks, extra=extra + ["--indices", ref_idx_path])
    if ro is None:
        return False, rl
    problems, shortfall = check_indices(gpu_idx, np.load(ref_idx_path), K, scores, tols)
    # The attention over the kernel's own selection.
    sel_path = os.path.join(tmp, "gpu_idx.npy")
    np.save(sel_path, gpu_idx.astype(np.int64))
    ro, rl, cmd = run_reference(attnc_bin, src, variant, q, k, v, tmp, q_off=q_off, k_off=k_off, inputs=inputs,
                                sinks=sinks, extra=extra + ["--selection", sel_path])
    if ro is None:
        return False, "; ".join(problems + [rl])
    ok, msg = compare(out, lse, ro, rl, dt)
    filled = int((gpu_idx[:, 0] >= 0).sum(axis=-1).min()), int((gpu_idx[:, 0] >= 0).sum(axis=-1).max())
    msg = f"keys/row {filled[0]}..{filled[1]} of K={K}, " + msg
    if shortfall > 0:
        msg += f", stand-ins down to {shortfall:.2f} tolerances"
    if problems:
        return False, msg + "  <- indices: " + "; ".join(problems)
    return ok, msg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptx", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--attnc", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="comma-separated variants (default: all)")
    ap.add_argument("--json")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(4321)
    module = attnc.load(args.ptx)
    results, failures = [], 0
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for variant in module.variants:
            if args.only and variant not in args.only.split(","):
                continue
            kernel = module.variant(variant)
            for case in cases(args.quick):
                t0 = time.time()
                try:
                    ok, msg = run_case(kernel, kernel.spec, args.src, variant, case, args.attnc, tmp, gen)
                except Exception as e:  # a launch or check error fails this case
                    ok, msg = False, f"{type(e).__name__}: {e}"[:400]
                B, Hq, Hkv, Lq, Lk, D, dt, qo, ko = case
                tag = "skip" if ok is None else "ok  " if ok else "FAIL"
                print(f"{tag} {variant:15s} B{B} H{Hq}/{Hkv} Lq{Lq:<5d} Lk{Lk:<5d} D{D:<3d} {dt} off({qo},{ko})  {msg}"
                      f"  [{time.time() - t0:.1f}s]", flush=True)
                if ok is None:
                    continue
                failures += not ok
                results.append({"variant": variant, "case": case, "ok": ok, "msg": msg})
    print(f"\n{len(results) - failures}/{len(results)} cases passed in {time.time() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
