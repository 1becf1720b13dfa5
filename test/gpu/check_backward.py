#!/usr/bin/env python3
"""GPU correctness of attnc's gradient kernels against the float64 reference.

Usage (on the GPU machine; PTX compiled with --backward=on by scripts/build_ptx.sh
into build-ptx/backward/):
  check_backward.py --ptx-dir build-ptx/backward --attnc BUILD/bin/attnc [--quick] [--only NAME,...] [--json OUT]

For every example in PTX_DIR and every variant with gradient kernels
(NAME.backward), over a matrix of shapes (odd lengths, MQA and GQA 4:1, one
query, qlen != klen both ways, so rows with no key, explicit offsets, head dims
64 and 128, bf16 and fp16): random q, k, v and dO; the forward kernel, then
Kernel.backward (gradients poisoned with NaN before the launch), and dQ, dK, dV
(and dsinks) compared with `attnc run --reference --grad-out` (float64):
relative L2 error <= 2e-2 (bf16) / 4e-3 (fp16) each, no NaN. (The tolerance is
twice the forward's: dS is rounded to the input type before its two products.)
Prints one line per case and a summary; exits 1 on any failure.
"""
import argparse, json, math, os, sys, tempfile, time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
sys.path.insert(0, os.path.dirname(__file__))
import attnc  # noqa: E402

from check_kernels import make_inputs  # noqa: E402
from reference_compare import TORCH_DT, run_reference, save_npy  # noqa: E402

GRAD_TOL = {"bf16": 2e-2, "fp16": 4e-3}


def cases(quick=False):
    """(B, Hq, Hkv, Lq, Lk, D, dtype, q_offset, k_offset); quick: four small
    ones (for compute-sanitizer)."""
    if quick:
        return [(2, 4, 1, 17, 17, 64, "bf16", None, None), (2, 8, 2, 128, 128, 128, "fp16", None, None),
                (1, 2, 2, 200, 70, 64, "bf16", None, None), (1, 2, 1, 70, 130, 256, "bf16", None, None)]
    out = []
    for D in (64, 128):
        for dt in ("bf16", "fp16"):
            out.append((2, 4, 1, 17, 17, D, dt, None, None))      # MQA, odd length
            out.append((1, 4, 4, 1, 300, D, dt, None, None))      # one query
            out.append((2, 8, 2, 128, 128, D, dt, None, None))    # GQA 4:1
            out.append((1, 2, 1, 300, 1000, D, dt, None, None))   # qlen < klen
            out.append((1, 2, 2, 1000, 300, D, dt, None, None))   # qlen > klen: rows with no key
            out.append((1, 2, 2, 257, 513, D, dt, 700, 100))      # explicit offsets
    # Head dim 256 (dQ at one CTA an SM, dK/dV in two passes).
    for dt in ("bf16", "fp16"):
        out.append((2, 4, 1, 17, 17, 256, dt, None, None))
        out.append((2, 8, 2, 128, 128, 256, dt, None, None))
        out.append((1, 2, 1, 300, 1000, 256, dt, None, None))
        out.append((1, 2, 2, 257, 513, 256, dt, 700, 100))
    out.append((1, 2, 2, 1000, 1000, 128, "bf16", None, None))
    out.append((1, 4, 2, 2048, 2048, 64, "fp16", None, None))
    return out


def rel_l2(got, ref):
    """Relative L2 error of got against ref (float64, CPU), at least 1e-3 per
    element in the denominator (gradients of rows that attend to nothing are 0)."""
    g = got.double().cpu()
    denom = max(ref.norm().item(), 1e-3 * math.sqrt(max(1, ref.numel())))
    return (g - ref).norm().item() / denom


def run_case(kernel, example, src, variant, case, sink, attnc_bin, tmp, gen):
    B, Hq, Hkv, Lq, Lk, D, dt, qo, ko = case
    tdt = TORCH_DT[dt]
    q = torch.randn(B, Hq, Lq, D, generator=gen).to(tdt).cuda()
    k = torch.randn(B, Hkv, Lk, D, generator=gen).to(tdt).cuda()
    v = torch.randn(B, Hkv, Lk, D, generator=gen).to(tdt).cuda()
    dout = torch.randn(B, Hq, Lq, D, generator=gen).to(tdt).cuda()
    q_off = qo if qo is not None else Lk - Lq
    k_off = ko if ko is not None else 0
    if example == "documents" and q_off < 0:
        q_off = qo = 0  # token-axis inputs are indexed by position: positions must be >= 0
    ins = make_inputs(example, B, max(q_off + Lq, k_off + Lk, 1), gen)
    if "slope" in ins:  # one ALiBi slope per query head
        ins["slope"] = ins["slope"][:Hq].contiguous()
    sinks = (torch.randn(Hq, generator=gen) * 2).float().cuda() if sink else None
    gpu_ins = {n: t.cuda() for n, t in ins.items()}
    out, lse = kernel(q, k, v, sinks=sinks, inputs=gpu_ins, q_offset=qo, k_offset=ko)
    dq, dk, dv = (torch.full_like(t, float("nan")) for t in (q, k, v))
    grads = kernel.backward(q, k, v, out, lse, dout, sinks=sinks, inputs=gpu_ins, q_offset=qo,
                            k_offset=ko, dq=dq, dk=dk, dv=dv)
    torch.cuda.synchronize()

    names = ["dq", "dk", "dv"] + (["dsinks"] if sink else [])
    paths = {n: os.path.join(tmp, n + ".npy") for n in names}
    save_npy(os.path.join(tmp, "dout.npy"), dout)
    extra = ["--grad-out", os.path.join(tmp, "dout.npy")]
    for n in names:
        extra += ["--" + n, paths[n]]
    ro, rl, cmd = run_reference(attnc_bin, src, variant, q, k, v, tmp, q_off=q_off, k_off=k_off,
                                inputs=ins, sinks=sinks, extra=extra)
    if ro is None:
        return False, rl
    problems, errs = [], []
    for n, got in zip(names, grads):
        ref = torch.from_numpy(np.load(paths[n]))
        if tuple(ref.shape) != tuple(got.shape):
            problems.append(f"{n} shape {tuple(got.shape)}, the reference's {tuple(ref.shape)}")
            continue
        if torch.isnan(got).any():
            problems.append(f"{n}: NaN at {int(torch.isnan(got).sum())} elements")
            continue
        err = rel_l2(got, ref)
        errs.append(f"{n} {err:.1e}")
        if not err <= GRAD_TOL[dt]:
            problems.append(f"{n} rel L2 {err:.2e} > {GRAD_TOL[dt]:.0e}")
    return not problems, "; ".join(problems) if problems else " ".join(errs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptx-dir", required=True)
    ap.add_argument("--attnc", required=True)
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
    ap.add_argument("--only")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(4321)
    results, failures = [], 0
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for ptx in sorted(os.listdir(args.ptx_dir)):
            if not ptx.endswith(".ptx"):
                continue
            example = ptx[:-4]
            if args.only and example not in args.only.split(","):
                continue
            src = os.path.join(args.examples, example + ".attn")
            module = attnc.load(os.path.join(args.ptx_dir, ptx))
            for variant in module.variants:
                kernel = module.variant(variant)
                if "backward_of" in kernel.spec or not kernel.has_backward:
                    continue
                for case in cases(args.quick):
                    t0 = time.time()
                    try:
                        ok, msg = run_case(kernel, example, src, variant, case, kernel.spec.get("sink", False),
                                           args.attnc, tmp, gen)
                    except Exception as e:  # a launch or check error is a failure of this case
                        ok, msg = False, f"{type(e).__name__}: {e}"[:300]
                    failures += not ok
                    B, Hq, Hkv, Lq, Lk, D, dt, qo, ko = case
                    print(f"{'ok  ' if ok else 'FAIL'} {example:13s} {variant:10s} B{B} H{Hq}/{Hkv} "
                          f"Lq{Lq:<5d} Lk{Lk:<5d} D{D:<3d} {dt} off({qo},{ko})  {msg}  [{time.time() - t0:.1f}s]",
                          flush=True)
                    results.append({"example": example, "variant": variant, "case": case, "ok": ok, "msg": msg})
    print(f"\n{len(results) - failures}/{len(results)} backward cases passed in {time.time() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
