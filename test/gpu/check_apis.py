#!/usr/bin/env python3
"""attnc-compiled kernels through each API of libattnrt, against the reference.

Usage (GPU machine): check_apis.py --ptx-dir DIR --attnc BUILD/bin/attnc --c-api BUILD/bin/attnc_c_api_run
  - C++ API: `attnc run --module K.ptx FILE ...` (the driver's GPU path uses
    attnc::Module / attnc::Kernel) against `attnc run --reference FILE ...`,
    the same .npy files in and out;
  - C API: test/gpu/c_api_run.c (attnrt_module_load_file, attnrt_kernel_launch);
  - Python: attnc.load(...).variant(...)(q, k, v) on torch tensors.
Each on random bf16 and fp16 data, relative L2 of O within 1e-2 / 2e-3 and
LSE within 1e-3. Exits 1 on a failure.
"""
import argparse, os, subprocess, sys, tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import attnc  # noqa: E402

TOL = {"bf16": 1e-2, "fp16": 2e-3}


def as_npy(t):
    t = t.cpu().contiguous()
    return t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()


def compare(name, o, lse, ro, rl, dt):
    err = np.linalg.norm(o - ro) / max(np.linalg.norm(ro), 1e-30)
    fin = np.isfinite(rl)
    lerr = float(np.max(np.abs(lse[fin] - rl[fin]) / np.maximum(np.abs(rl[fin]), 1.0))) if fin.any() else 0.0
    ok = err <= TOL[dt] and lerr <= 1e-3 and np.array_equal(np.isinf(lse), np.isinf(rl)) and not np.isnan(o).any()
    print(f"{'ok  ' if ok else 'FAIL'} {name:50s} O err {err:.2e}  LSE err {lerr:.1e}", flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptx-dir", required=True)
    ap.add_argument("--attnc", required=True)
    ap.add_argument("--c-api", required=True)
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
    args = ap.parse_args()
    torch.manual_seed(7)
    failures = 0
    cases = [("mistral", "mistral", 2, 8, 2, 300, 700, 128), ("modernbert", "local", 1, 4, 4, 1000, 1000, 64),
             ("gemma2", "local", 1, 2, 1, 257, 257, 256)]
    for example, variant, B, Hq, Hkv, Lq, Lk, D in cases:
        src = os.path.join(args.examples, example + ".attn")
        ptx = os.path.join(args.ptx_dir, example + ".ptx")
        for dt, tdt in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            q = torch.randn(B, Hq, Lq, D).to(tdt)
            k = torch.randn(B, Hkv, Lk, D).to(tdt)
            v = torch.randn(B, Hkv, Lk, D).to(tdt)
            with tempfile.TemporaryDirectory() as d:
                for n, t in (("q", q), ("k", k), ("v", v)):
                    np.save(os.path.join(d, n + ".npy"), as_npy(t))
                    as_npy(t).tofile(os.path.join(d, n + ".bin"))
                common = [src, "--variant", variant, "--q", f"{d}/q.npy", "--k", f"{d}/k.npy", "--v", f"{d}/v.npy",
                          "--dtype-out", "f64"]
                r = subprocess.run([args.attnc, "run", "--reference", *common, "--out", f"{d}/ro.npy",
                                    "--lse", f"{d}/rl.npy"], capture_output=True, text=True)
                if r.returncode:
                    print("FAIL reference:", r.stderr)
                    failures += 1
                    continue
                ro, rl = np.load(f"{d}/ro.npy"), np.load(f"{d}/rl.npy")
                label = f"{example}/{variant} B{B} H{Hq}/{Hkv} {Lq}x{Lk} D{D} {dt}"
                # C++ API, through the driver.
                r = subprocess.run([args.attnc, "run", "--module", ptx, *common, "--out", f"{d}/go.npy",
                                    "--lse", f"{d}/gl.npy"], capture_output=True, text=True)
                if r.returncode:
                    print("FAIL C++ API (attnc run --module):", r.stderr.strip())
                    failures += 1
                else:
                    failures += not compare("C++ API  " + label, np.load(f"{d}/go.npy"), np.load(f"{d}/gl.npy"), ro, rl, dt)
                # C API.
                r = subprocess.run([args.c_api, ptx, variant, dt, str(B), str(Hq), str(Hkv), str(Lq), str(Lk), str(D), d],
                                   capture_output=True, text=True)
                if r.returncode:
                    print("FAIL C API:", r.stderr.strip())
                    failures += 1
                else:
                    bits = torch.from_numpy(np.fromfile(f"{d}/o.bin", dtype=np.int16).reshape(q.shape))
                    o = bits.view(tdt).double().numpy()
                    lse = np.fromfile(f"{d}/lse.bin", dtype=np.float32).reshape(B, Hq, Lq).astype(np.float64)
                    failures += not compare("C API    " + label, o, lse, ro, rl, dt)
                # Python.
                kern = attnc.load(ptx).variant(variant)
                out, lse = kern(q.cuda(), k.cuda(), v.cuda())
                failures += not compare("Python   " + label, out.double().cpu().numpy(), lse.double().cpu().numpy(),
                                        ro, rl, dt)
    print(f"{'all APIs agree with the reference' if not failures else str(failures) + ' failures'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
