#!/usr/bin/env python3
"""The installed wheel on the GPU machine (scripts/gpu_check.sh step "wheel"):
run from outside the source tree with the venv's python, so that `import
attnc` is the wheel's. JIT-compiles a sliding window through attnc.compile
(first call into a fresh cache: a miss; the same source again: a hit; both
timed), runs it on random bf16 tensors with qlen != klen, GQA and an odd
length, and compares O and LSE with the wheel's own `attnc run --reference`
(the console entry point) in float64.

Usage: check_wheel.py --not-under SOURCE_TREE   (one line per check; exits 1 on a failure)
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

import numpy as np
import torch

import attnc

SOURCE = "attention w { mask k <= q && q - k < 256; }"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--not-under", required=True, help="the source tree, whose python/attnc must not be the one imported")
    args = ap.parse_args()
    where = os.path.realpath(os.path.dirname(attnc.__file__))
    print(f"attnc {attnc.version()} from {where}")
    if where.startswith(os.path.realpath(os.path.join(args.not_under, "python"))):
        print("FAIL: attnc is the source tree's, not the installed wheel's")
        return 1
    exe = shutil.which("attnc")
    print(f"attnc command: {exe}")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        t0 = time.time()
        mod = attnc.compile(SOURCE, cache_dir=cache, options={"head_dims": "128", "dtypes": "bf16"})
        t1 = time.time()
        attnc.compile(SOURCE, cache_dir=cache, options={"head_dims": "128", "dtypes": "bf16"})
        t2 = time.time()
        print(f"attnc.compile: first call (cache miss) {t1 - t0:.2f} s, second (cache hit) {(t2 - t1) * 1e3:.1f} ms")
        kern = mod.variant("w")
        src = os.path.join(tmp, "w.attn")
        with open(src, "w") as f:
            f.write(SOURCE + "\n")
        gen = torch.Generator().manual_seed(7)
        for B, Hq, Hkv, Lq, Lk in [(1, 4, 4, 1000, 1000), (2, 8, 2, 333, 1277)]:
            q = torch.randn(B, Hq, Lq, 128, generator=gen).to(torch.bfloat16)
            k = torch.randn(B, Hkv, Lk, 128, generator=gen).to(torch.bfloat16)
            v = torch.randn(B, Hkv, Lk, 128, generator=gen).to(torch.bfloat16)
            out, lse = kern(q.cuda(), k.cuda(), v.cuda())
            torch.cuda.synchronize()
            paths = {}
            for n, t in (("q", q), ("k", k), ("v", v)):
                paths[n] = os.path.join(tmp, n + ".npy")
                np.save(paths[n], t.float().numpy())
            r = subprocess.run([exe, "run", "--reference", src, "--variant", "w", "--q", paths["q"], "--k",
                                paths["k"], "--v", paths["v"], "--out", os.path.join(tmp, "o.npy"), "--lse",
                                os.path.join(tmp, "lse.npy"), "--dtype-out", "f64"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL: attnc run --reference: {r.stderr.strip()[:300]}")
                failures += 1
                continue
            ro = torch.from_numpy(np.load(os.path.join(tmp, "o.npy")))
            rl = torch.from_numpy(np.load(os.path.join(tmp, "lse.npy")))
            o_err = ((out.double().cpu() - ro).norm() / ro.norm()).item()
            finite = torch.isfinite(rl)
            l_err = (lse.double().cpu()[finite] - rl[finite]).abs().max().item()
            ok = o_err < 2e-2 and l_err < 1e-3
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} B{B} H{Hq}/{Hkv} Lq{Lq} Lk{Lk} d128 bf16: O rel err {o_err:.2e}, LSE err {l_err:.1e}")
    print("wheel: all checks passed" if not failures else f"wheel: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
