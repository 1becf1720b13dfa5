#!/usr/bin/env python3
"""GPU correctness of attnc's kernels against the float64 reference executor.

Usage (on the GPU machine; PTX compiled beforehand by attnc on a build machine):
  check_kernels.py --ptx-dir DIR --attnc BUILD/bin/attnc [--quick] [--only NAME[,NAME...]] [--json OUT]

For every example in PTX_DIR (DSA's are in build-ptx/dsa/: check_dsa.py) and every
variant, over a matrix of shapes (lengths 1, 17, 128, 1000, 4096, qlen != klen,
batch 2, GQA 4:1 and one KV head, head dims 64/128/256, bf16 and fp16,
offsets, inputs that make empty rows): random inputs, outputs poisoned with
NaN before each launch, the kernel launched through the Python package on
torch tensors, and O and LSE compared with `attnc run --reference` (float64):
  relative L2 error of O <= 1e-2 (bf16) / 2e-3 (fp16), LSE within 1e-3
  relative where finite, -inf exactly where the reference has it, no NaN.
Prints one line per case and a summary; exits 1 on any failure.
"""
import argparse, json, os, sys, tempfile, time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
sys.path.insert(0, os.path.dirname(__file__))
import attnc  # noqa: E402

from reference_compare import TORCH_DT, compare, run_reference  # noqa: E402


def make_inputs(example, B, Lmax, gen):
    """Input tensors the examples read, in torch, on the GPU."""
    ins = {}
    if example == "documents":
        # Documents of random lengths; also some length-1 documents.
        doc = torch.zeros(B, Lmax, dtype=torch.int32)
        for b in range(B):
            pos, d = 0, 0
            while pos < Lmax:
                n = int(torch.randint(1, max(2, Lmax // 3), (1,), generator=gen))
                doc[b, pos:pos + n] = d
                pos += n
                d += 1
        ins["doc"] = doc
    if example == "prefixlm":
        ins["prefix"] = torch.randint(0, max(1, Lmax), (B,), generator=gen, dtype=torch.int32)
    if example == "alibi":
        ins["slope"] = (torch.rand(16, generator=gen) * 0.5).float()
    return ins


def cases(quick):
    """(B, Hq, Hkv, Lq, Lk, D, dtype, q_offset, k_offset)."""
    out = []
    for D in (64, 128, 256):
        for dt in ("bf16", "fp16"):
            out.append((2, 4, 1, 17, 17, D, dt, None, None))        # MQA, odd length
            out.append((1, 4, 4, 1, 1000, D, dt, None, None))       # decode: one query
            if not quick:
                out.append((2, 8, 2, 128, 128, D, dt, None, None))  # GQA 4:1
                out.append((1, 2, 2, 1000, 1000, D, dt, None, None))
                out.append((1, 2, 1, 300, 1000, D, dt, None, None))  # qlen != klen, chunked prefill
                out.append((1, 2, 2, 1000, 300, D, dt, None, None))  # qlen > klen: q_offset < 0, empty rows
                out.append((1, 2, 2, 257, 513, D, dt, 700, 100))     # explicit offsets
    if not quick:
        out.append((1, 2, 2, 4096, 4096, 128, "bf16", None, None))
        out.append((1, 2, 1, 4096, 4096, 64, "fp16", None, None))
    return out


def run_case(kernel, example, src, variant, case, sink, attnc_bin, tmp, gen):
    B, Hq, Hkv, Lq, Lk, D, dt, qo, ko = case
    tdt = TORCH_DT[dt]
    q = torch.randn(B, Hq, Lq, D, generator=gen).to(tdt).cuda()
    k = torch.randn(B, Hkv, Lk, D, generator=gen).to(tdt).cuda()
    v = torch.randn(B, Hkv, Lk, D, generator=gen).to(tdt).cuda()
    q_off = qo if qo is not None else Lk - Lq
    k_off = ko if ko is not None else 0
    if example == "documents" and q_off < 0:
        # Token-axis inputs are indexed by position: positions must be >= 0.
        q_off = qo = 0
    positions = max(q_off + Lq, k_off + Lk, 1)
    ins = make_inputs(example, B, positions, gen)
    if "slope" in ins:
        ins["slope"] = ins["slope"][:Hq].contiguous()
    sinks = (torch.randn(Hq, generator=gen) * 2).float().cuda() if sink else None
    out = torch.full_like(q, float("nan"))
    lse = torch.full((B, Hq, Lq), float("nan"), device="cuda", dtype=torch.float32)
    gpu_ins = {n: t.cuda() for n, t in ins.items()}
    kernel(q, k, v, sinks=sinks, inputs=gpu_ins, q_offset=qo, k_offset=ko, out=out, lse=lse)
    torch.cuda.synchronize()

    ro, rl, _ = run_reference(attnc_bin, src, variant, q, k, v, tmp, q_off=q_off, k_off=k_off, inputs=ins, sinks=sinks)
    if ro is None:
        return False, rl
    return compare(out, lse, ro, rl, dt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptx-dir", required=True)
    ap.add_argument("--attnc", required=True)
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only")
    ap.add_argument("--json")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(1234)
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
                spec = kernel.spec
                for case in cases(args.quick):
                    t0 = time.time()
                    try:
                        ok, msg = run_case(kernel, example, src, variant, case, spec.get("sink", False),
                                           args.attnc, tmp, gen)
                    except Exception as e:  # a launch or check error is a failure of this case
                        ok, msg = False, f"{type(e).__name__}: {e}"[:300]
                    failures += not ok
                    B, Hq, Hkv, Lq, Lk, D, dt, qo, ko = case
                    line = (f"{'ok  ' if ok else 'FAIL'} {example:13s} {variant:10s} B{B} H{Hq}/{Hkv} "
                            f"Lq{Lq:<5d} Lk{Lk:<5d} D{D:<3d} {dt} off({qo},{ko})  {msg}  [{time.time() - t0:.1f}s]")
                    print(line, flush=True)
                    results.append({"example": example, "variant": variant, "case": case, "ok": ok, "msg": msg})
    print(f"\n{len(results) - failures}/{len(results)} cases passed in {time.time() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
