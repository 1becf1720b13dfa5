#!/usr/bin/env python3
"""Differential test of generated programs on the GPU (issue 13).

Usage (on the GPU machine; programs and PTX from scripts/build_generated_ptx.sh):
  check_generated.py --gen-dir build-gen --attnc BUILD/bin/attnc
                     [--workers N] [--cases 3] [--failures DIR] [--json OUT]

For every generated program (gen-<seed>.attn with its gen-<seed>.ptx, built
for one head dim and dtype) and every variant of it: --cases random shapes
(odd lengths 1 .. 1500, qlen != klen, batch 1-3, GQA and MQA, random q/k
offsets that reach the programs' constants, up to ~3000), random values for
every runtime input the variant reads (bool inputs with all-false stretches
for empty rows, int inputs as document-like runs or small random values,
f32 inputs from a normal distribution), random sinks; outputs poisoned with
NaN, the kernel launched through the Python package, and O and LSE compared
with `attnc run --reference` (float64) under the -D overrides of the
program's header line (reference_compare.py gives the tolerances).

Every shape and value comes from a generator seeded by (program seed,
variant, case), so a failure is reproducible; each one is written to
--failures as <program>-<variant>-<case>.json (the .attn path, the shape, the
seed, the reference's command line) next to a copy of the program.
A case whose reference run stops on an integer division or remainder by
zero (a run-time error by language.md 8.1) is skipped and counted.
Prints one line per case and a summary; exits 1 on any failure.
"""
import argparse, json, multiprocessing, os, shutil, sys, tempfile, time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
sys.path.insert(0, os.path.dirname(__file__))
import attnc  # noqa: E402

from reference_compare import TORCH_DT, compare, run_reference  # noqa: E402


RUNTIME_ERROR = "by zero (--variant"  # the reference's integer division/modulo by zero


def header_defines(src):
    """The -D NAME=VALUE overrides of a program's `// attnc-gen:` line."""
    with open(src) as f:
        tok = f.readline().split()
    return [tok[i + 1] for i in range(len(tok) - 1) if tok[i] == "-D"]


def random_shape(gen, reads_tokens):
    """(B, Hq, Hkv, Lq, Lk, q_offset, k_offset); offsets None for the defaults."""
    def r(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))
    B = r(1, 3)
    Hkv = (1, 1, 2, 4)[r(0, 3)]
    Hq = Hkv * (1, 2, 4)[r(0, 2)]
    lengths = (1, 2, 17, 63, 64, 65, 127, 128, 129, 255, 300, 513, 1000, 1500)
    Lq = lengths[r(0, len(lengths) - 1)] if r(0, 1) else r(1, 1500)
    Lk = Lq if r(0, 2) == 0 else (lengths[r(0, len(lengths) - 1)] if r(0, 1) else r(1, 1500))
    # At most ~1e9 multiply-adds a case for the reference (about a second).
    while B * Hq * Lq * Lk * 256 > 1e9 and (B > 1 or Hq > 1):
        if B > 1:
            B -= 1
        else:
            Hq, Hkv = max(1, Hq // 2), max(1, Hkv // 2)
    q_off = k_off = None
    if r(0, 1):
        # Offsets that move the rows and columns over the programs' constants
        # (thresholds such as k < 667 or q < 2733).
        q_off, k_off = r(0, 3000), r(0, 3000)
    elif reads_tokens and Lk < Lq:
        q_off = 0  # token-indexed inputs need positions >= 0 (the default is Lk - Lq < 0)
    return B, Hq, Hkv, Lq, Lk, q_off, k_off


def random_input(spec, B, Hq, positions, gen):
    """A tensor for one declared runtime input, from its manifest entry."""
    sizes = [B if a == "batch" else Hq if a == "head" else positions for a in spec["axes"]]
    elem = spec["elem"]
    style = int(torch.randint(0, 3, (1,), generator=gen))
    if elem == "bool":
        p = (0.1, 0.5, 0.9)[style]
        t = torch.rand(sizes, generator=gen) < p
        if "token" in spec["axes"] and positions > 8:
            # An all-false stretch: rows whose keys this input disallows.
            axis = spec["axes"].index("token")
            start = int(torch.randint(0, positions // 2, (1,), generator=gen))
            t.narrow(axis, start, positions // 4).fill_(False)
        return t
    if elem in ("i32", "i64"):
        dt = torch.int32 if elem == "i32" else torch.int64
        if style == 0 and "token" in spec["axes"]:
            # Document-like: runs of equal, increasing values along the token axis.
            axis = spec["axes"].index("token")
            steps = (torch.rand(sizes, generator=gen) < 0.01).to(dt)
            return torch.cumsum(steps, dim=axis).to(dt)
        if style == 1:
            return torch.randint(-8, 9, sizes, generator=gen, dtype=dt)
        return torch.randint(-positions - 1, 2 * positions + 2, sizes, generator=gen, dtype=dt)
    return (torch.randn(sizes, generator=gen) * 0.5).float()


def run_program(job):
    """Every variant and case of one program: a list of result dicts."""
    src, ptx, cases, seed, attnc_bin, threads, failures = job
    try:
        module = attnc.load(ptx)
    except Exception as e:  # the driver refused the PTX: every case of it fails
        return [{"program": os.path.basename(src)[:-5], "variant": "-", "case": 0, "shape": None, "ok": False,
                 "msg": f"load: {type(e).__name__}: {e}"[:300], "seconds": 0.0}]
    return [run_case(module.variant(variant), src, variant, case, seed, attnc_bin, threads, failures)
            for variant in module.variants for case in range(cases)]


def run_case(kernel, src, variant, case, seed, attnc_bin, threads, failures):
    """One random shape of one variant: a result dict."""
    gen = torch.Generator().manual_seed(seed * 1000003 + case)
    spec = kernel.spec
    D = spec["kernels"][0]["head_dim"]
    dt = spec["kernels"][0]["dtype"]
    reads_tokens = any("token" in i["axes"] for i in spec.get("inputs", []))
    B, Hq, Hkv, Lq, Lk, qo, ko = random_shape(gen, reads_tokens)
    q_off = qo if qo is not None else Lk - Lq
    k_off = ko if ko is not None else 0
    positions = max(q_off + Lq, k_off + Lk, 1)
    ins = {i["name"]: random_input(i, B, Hq, positions, gen) for i in spec.get("inputs", [])}
    tdt = TORCH_DT[dt]
    q = torch.randn(B, Hq, Lq, D, generator=gen).to(tdt).cuda()
    k = torch.randn(B, Hkv, Lk, D, generator=gen).to(tdt).cuda()
    v = torch.randn(B, Hkv, Lk, D, generator=gen).to(tdt).cuda()
    sinks = (torch.randn(Hq, generator=gen) * 2).float().cuda() if spec.get("sink") else None
    shape = dict(B=B, Hq=Hq, Hkv=Hkv, Lq=Lq, Lk=Lk, D=D, dtype=dt, q_offset=qo, k_offset=ko)
    name = os.path.basename(src)[:-5]
    result = {"program": name, "variant": variant, "case": case, "shape": shape}
    t0 = time.time()
    try:
        out = torch.full_like(q, float("nan"))
        lse = torch.full((B, Hq, Lq), float("nan"), device="cuda", dtype=torch.float32)
        kernel(q, k, v, sinks=sinks, inputs={n: t.cuda() for n, t in ins.items()}, q_offset=qo, k_offset=ko,
               out=out, lse=lse)
        torch.cuda.synchronize()
        with tempfile.TemporaryDirectory() as tmp:
            ro, rl, cmd = run_reference(attnc_bin, src, variant, q, k, v, tmp, q_off=q_off, k_off=k_off, inputs=ins,
                                        sinks=sinks, defines=header_defines(src), threads=threads)
            if ro is None and RUNTIME_ERROR in rl:
                # An integer division by a value that is zero at run time: the
                # language makes it an error (language.md 8.1), so there is no
                # result to compare (the kernel's is unspecified).
                ok, msg = None, rl
            elif ro is None:
                ok, msg = False, rl
            else:
                ok, msg = compare(out, lse, ro, rl, dt)
    except Exception as e:  # a launch or check error is a failure of this case
        ok, msg, cmd = False, f"{type(e).__name__}: {e}"[:300], None
    result.update(ok=ok, msg=msg, seconds=round(time.time() - t0, 2))
    if ok is False and failures:
        os.makedirs(failures, exist_ok=True)
        shutil.copy(src, os.path.join(failures, os.path.basename(src)))
        with open(os.path.join(failures, f"{name}-{variant}-{case}.json"), "w") as f:
            json.dump(dict(result, attn=os.path.basename(src), generator_seed=seed * 1000003 + case,
                           flags=open(src[:-5] + ".flags").read().strip(), reference_command=cmd), f, indent=1)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--attnc", required=True)
    ap.add_argument("--workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) // 2)))
    ap.add_argument("--cases", type=int, default=3, help="random shapes per variant")
    ap.add_argument("--failures", help="where to write a reproducer for each failure")
    ap.add_argument("--json")
    args = ap.parse_args()
    threads = max(1, (os.cpu_count() or 2) // args.workers)
    jobs = []
    # gen-<seed>.ptx and raw-<seed>.ptx (scripts/build_generated_ptx.sh)
    def seed_of(ptx):
        return int(ptx[:-len(".ptx")].split("-")[1])
    programs = sorted((f for f in os.listdir(args.gen_dir) if f.endswith(".ptx")),
                      key=lambda f: (f.split("-")[0], seed_of(f)))
    for ptx in programs:
        src = os.path.join(args.gen_dir, ptx[:-4] + ".attn")
        seed = seed_of(ptx)
        jobs.append((src, os.path.join(args.gen_dir, ptx), args.cases, seed, args.attnc, threads, args.failures))
    print(f"{len(programs)} programs, {args.cases} random shapes per variant, {args.workers} workers", flush=True)
    t_start = time.time()
    results = []
    ctx = multiprocessing.get_context("spawn")  # CUDA in each worker of its own
    with ctx.Pool(args.workers, maxtasksperchild=32) as pool:
        for r in (r for rs in pool.imap_unordered(run_program, jobs) for r in rs):
            s = r["shape"]
            where = (f"B{s['B']} H{s['Hq']}/{s['Hkv']} Lq{s['Lq']:<5d} Lk{s['Lk']:<5d} D{s['D']:<3d} {s['dtype']} "
                     f"off({s['q_offset']},{s['k_offset']})" if s else "")
            status = "ok  " if r["ok"] else "skip" if r["ok"] is None else "FAIL"
            print(f"{status} {r['program']:9s} {r['variant']:6s} #{r['case']} {where}  "
                  f"{r['msg']}  [{r['seconds']:.1f}s]", flush=True)
            results.append(r)
    failures = sum(r["ok"] is False for r in results)
    skipped = sum(r["ok"] is None for r in results)
    variants = len({(r["program"], r["variant"]) for r in results})
    print(f"\n{len(results) - failures - skipped}/{len(results) - skipped} cases passed ({len(programs)} programs, "
          f"{variants} variants; {skipped} cases skipped: a run-time division by zero) in {time.time() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
