#!/usr/bin/env python3
"""One launch of attnc's dense d=128 kernel (L=16384, 16 heads, bf16) for a
profiler: `ncu --section SpeedOfLight --section WarpStateStats python3
bench/profile_dense.py --ptx build-ptx/bench/patterns.ptx` (see bench/NOTES.md)."""
import argparse, os, sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attnc  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--ptx", required=True)
ap.add_argument("--variant", default="dense")
args = ap.parse_args()
q = torch.randn(1, 16, 16384, 128, device="cuda", dtype=torch.bfloat16)
k, v = torch.randn_like(q), torch.randn_like(q)
kern = attnc.load(args.ptx).variant(args.variant)
kern(q, k, v)
torch.cuda.synchronize()
