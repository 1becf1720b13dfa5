#!/usr/bin/env python3
"""Launches of attnc's long-context kernels (L=131072, 16 heads, d=128, bf16:
the benchmark's sliding window 1024 and packed documents) for a profiler:
`ncu --kernel-name regex:'^(sliding1024|documents)_d128_bf16' --section
SpeedOfLight --section WarpStateStats python3 bench/profile_long.py --ptx
build-ptx/bench/patterns.ptx` (scripts/gpu_check.sh step "profile"; see
bench/NOTES.md). Each case runs twice: a warm-up, then the profiled launch."""
import argparse, os, sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attnc  # noqa: E402
from bench_attnc import document_ids  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--ptx", required=True)
ap.add_argument("--cases", default="sliding1024,documents")
args = ap.parse_args()
L, H, D = 131072, 16, 128
q = torch.randn(1, H, L, D, device="cuda", dtype=torch.bfloat16)
k, v = torch.randn_like(q), torch.randn_like(q)
mod = attnc.load(args.ptx)
inputs = {"documents": {"doc": document_ids(L).cuda()[None].contiguous()}}
for case in args.cases.split(","):
    kern = mod.variant(case)
    for _ in range(2):
        kern(q, k, v, inputs=inputs.get(case, {}))
    torch.cuda.synchronize()
    print(case, "ok")
