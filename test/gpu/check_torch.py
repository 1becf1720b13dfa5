#!/usr/bin/env python3
"""attnc.torch on the GPU (scripts/gpu_check.sh step "wheel", run with the
installed wheel; also runs against the source tree's package).

Every check compares with float64 attention computed here in plain PyTorch
from an explicit mask (an oracle independent of attnc):
- attnc.torch.attention on JIT-compiled kernels: a causal window with GQA,
  qlen != klen and an odd length, q/k/v as .transpose(1, 2) views of
  [B, L, H, D] tensors (strides as a model has them), bf16 and fp16, LSE;
- runtime inputs (packed documents, doc ids as a keyword) and sinks
  (GPT-OSS's banded layer) through the operator;
- selecting variants (DSA's fp8 indexer, a selection by an expression)
  through attnc::attention_select, against the direct call of the kernel,
  and under torch.compile;
- a side stream: the kernel runs on torch's current stream;
- attnc.torch.Attention in a small model: eager, torch.compile(fullgraph=True)
  equal, torch._dynamo.explain with no graph break;
- errors: a CPU tensor and an unsupported head dim raise attnc.Error naming
  the argument.

Usage: check_torch.py [--examples DIR]   (one line per check; exits 1 on a failure)
"""
import argparse
import math
import os
import sys
import time

import torch

import attnc
import attnc.torch as at

failures = 0


def report(ok, what):
    global failures
    failures += not ok
    print(("ok   " if ok else "FAIL ") + what, flush=True)


def reference(q, k, v, allowed, sinks=None, score=None):
    """float64 attention of [B, H, L, D] tensors; allowed [B or 1, 1, Lq, Lk] bool;
    score: the score rule, a function of the scaled scores [B, H, Lq, Lk]."""
    q, k, v = q.double(), k.double(), v.double()
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if score is not None:
        s = score(s)
    s = s.masked_fill(~allowed, float("-inf"))
    m = s.amax(-1, keepdim=True)
    if sinks is not None:
        m = torch.maximum(m, sinks.double().view(1, -1, 1, 1))
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(s - m)
    den = e.sum(-1, keepdim=True)
    if sinks is not None:
        den = den + torch.exp(sinks.double().view(1, -1, 1, 1) - m)
    out = torch.where(den > 0, (e @ v) / den.clamp_min(1e-300), torch.zeros_like(q))
    lse = (torch.log(den) + m).squeeze(-1)
    return out, lse


def compare(name, out, lse, ref_out, ref_lse, tol=2e-2):
    o_err = ((out.double() - ref_out).norm() / ref_out.norm().clamp_min(1e-30)).item()
    finite = torch.isfinite(ref_lse)
    l_err = (lse.double()[finite] - ref_lse[finite]).abs().max().item() if finite.any() else 0.0
    same_inf = bool((torch.isinf(lse) == ~finite).all())
    report(o_err < tol and l_err < 1e-2 and same_inf and not torch.isnan(out).any(),
           f"{name}: O rel err {o_err:.2e}, LSE max err {l_err:.1e}")


def positions(lq, lk, device):
    qpos = torch.arange(lk - lq, lk, device=device).view(-1, 1)  # default q_offset = Lk - Lq
    kpos = torch.arange(lk, device=device).view(1, -1)
    return qpos, kpos


class AttentionBlock(torch.nn.Module):
    """A residual attention block with attnc.torch.Attention over `kernel`
    (the compiled-model checks here and in check_torch_grad.py)."""

    def __init__(self, kernel, dim=256, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(dim, 3 * dim, bias=False)
        self.proj = torch.nn.Linear(dim, dim, bias=False)
        self.attn = at.Attention(kernel)

    def forward(self, x):
        b, l, _ = x.shape
        q, k, v = self.qkv(x).view(b, l, 3, self.heads, -1).unbind(2)
        o = self.attn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.proj(o.transpose(1, 2).reshape(b, l, -1))


def bhld(b, h, l, d, dtype, gen):
    """A [B, H, L, D] view of a [B, L, H, D] tensor (what a model's projection gives)."""
    return torch.randn(b, l, h, d, generator=gen, device="cuda").to(dtype).transpose(1, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "..", "..", "examples"))
    args = ap.parse_args()
    print(f"attnc {attnc.version()} from {os.path.dirname(attnc.__file__)}; torch {torch.__version__}")
    gen = torch.Generator(device="cuda").manual_seed(11)
    opts = {"head_dims": "64,128", "dtypes": "bf16,fp16"}

    window = attnc.compile("attention w { mask k <= q && q - k < 256; }", options=opts, verbose=True)
    kern = window.variant("w")
    for dtype in (torch.bfloat16, torch.float16):
        for B, Hq, Hkv, Lq, Lk, D in [(2, 8, 2, 333, 1277, 128), (1, 4, 4, 1000, 1000, 64)]:
            q, k, v = bhld(B, Hq, Lq, D, dtype, gen), bhld(B, Hkv, Lk, D, dtype, gen), bhld(B, Hkv, Lk, D, dtype, gen)
            out, lse = at.attention(q, k, v, kern, return_lse=True)
            qpos, kpos = positions(Lq, Lk, "cuda")
            ro, rl = reference(q, k, v, ((kpos <= qpos) & (qpos - kpos < 256)).view(1, 1, Lq, Lk))
            compare(f"window 256 B{B} H{Hq}/{Hkv} Lq{Lq} Lk{Lk} d{D} {str(dtype)[6:]} (strided views)",
                    out, lse, ro, rl)

    # Empty rows: q_offset = -100 puts the first 100 queries before every
    # key (k <= q allows none): O exactly 0, LSE -inf.
    B, Hq, Hkv, Lq, Lk, D = 1, 4, 1, 300, 700, 128
    q, k, v = bhld(B, Hq, Lq, D, torch.bfloat16, gen), bhld(B, Hkv, Lk, D, torch.bfloat16, gen), bhld(B, Hkv, Lk, D, torch.bfloat16, gen)
    out, lse = at.attention(q, k, v, kern, q_offset=-100, return_lse=True)
    qpos = torch.arange(-100, Lq - 100, device="cuda").view(-1, 1)
    kpos = torch.arange(Lk, device="cuda").view(1, -1)
    ro, rl = reference(q, k, v, ((kpos <= qpos) & (qpos - kpos < 256)).view(1, 1, Lq, Lk))
    compare(f"q_offset -100 (100 empty rows) H{Hq}/{Hkv} Lq{Lq} Lk{Lk} d{D} bf16", out, lse, ro, rl)
    report(bool((out[:, :, :100] == 0).all()) and bool(torch.isneginf(lse[:, :, :100]).all()),
           "empty rows: O exactly 0, LSE -inf")

    # Runtime inputs: packed documents of random lengths, doc ids by keyword,
    # qlen != klen (the queries are the last Lq positions).
    docs = attnc.compile(open(os.path.join(args.examples, "documents.attn")).read(), options=opts)
    B, H, Lq, Lk, D = 2, 4, 700, 2049, 128
    bounds = torch.sort(torch.randint(1, Lk, (B, 5), generator=gen, device="cuda"), dim=1).values
    doc = torch.searchsorted(bounds, torch.arange(Lk, device="cuda").expand(B, Lk).contiguous(), right=True).to(torch.int32)
    q, k, v = bhld(B, H, Lq, D, torch.bfloat16, gen), bhld(B, H, Lk, D, torch.bfloat16, gen), bhld(B, H, Lk, D, torch.bfloat16, gen)
    out, lse = at.attention(q, k, v, docs.variant("documents"), doc=doc, return_lse=True)
    qpos, kpos = positions(Lq, Lk, "cuda")
    dq = doc[:, Lk - Lq:].view(B, 1, Lq, 1)
    dk = doc.view(B, 1, 1, Lk)
    ro, rl = reference(q, k, v, (dq == dk) & (kpos <= qpos).view(1, 1, Lq, Lk))
    compare(f"documents (doc= input) B{B} H{H} Lq{Lq} Lk{Lk} d{D} bf16", out, lse, ro, rl)

    # Sinks: GPT-OSS's banded layer, a learned logit per query head.
    gpt = attnc.compile(open(os.path.join(args.examples, "gptoss.attn")).read(), options=opts)
    B, Hq, Hkv, L, D = 1, 8, 2, 515, 64
    q, k, v = bhld(B, Hq, L, D, torch.bfloat16, gen), bhld(B, Hkv, L, D, torch.bfloat16, gen), bhld(B, Hkv, L, D, torch.bfloat16, gen)
    sinks = torch.randn(Hq, generator=gen, device="cuda", dtype=torch.float32)
    layer = at.Attention(gpt.layer(0), sinks=sinks, return_lse=True)
    out, lse = layer(q, k, v)
    qpos, kpos = positions(L, L, "cuda")
    ro, rl = reference(q, k, v, ((kpos <= qpos) & (qpos - kpos < 128)).view(1, 1, L, L), sinks)
    compare(f"gptoss layer 0 (banded 128, sinks buffer) H{Hq}/{Hkv} L{L} d{D} bf16", out, lse, ro, rl)

    # A side stream: the operator runs on torch's current stream.
    B, H, L, D = 1, 4, 2048, 128
    q, k, v = bhld(B, H, L, D, torch.bfloat16, gen), bhld(B, H, L, D, torch.bfloat16, gen), bhld(B, H, L, D, torch.bfloat16, gen)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out_side = at.attention(q, k, v, kern)
    torch.cuda.current_stream().wait_stream(side)
    qpos, kpos = positions(L, L, "cuda")
    ro, _ = reference(q, k, v, ((kpos <= qpos) & (qpos - kpos < 256)).view(1, 1, L, L))
    err = ((out_side.double() - ro).norm() / ro.norm()).item()
    report(err < 2e-2, f"on a side stream: O rel err {err:.2e}")

    # A small model with attnc.Attention: eager vs torch.compile, no graph break.
    torch.manual_seed(3)
    model = torch.nn.Sequential(AttentionBlock(kern), AttentionBlock(kern)).cuda().to(torch.bfloat16)
    x = torch.randn(2, 1000, 256, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, fullgraph=True)
        t0 = time.time()
        traced = compiled(x)
        t1 = time.time()
        explanation = torch._dynamo.explain(model)(x)
    diff = (traced.float() - eager.float()).abs().max().item()
    report(diff < 5e-2, f"torch.compile(fullgraph=True) of a 2-block model: max |compiled - eager| {diff:.1e} "
                        f"(first compiled call {t1 - t0:.1f} s)")
    report(explanation.graph_break_count == 0 and explanation.graph_count == 1,
           f"torch._dynamo.explain: {explanation.graph_count} graph, {explanation.graph_break_count} graph breaks")

    # Selecting variants (DSA): attnc::attention_select against the direct call
    # of the same kernel (test/gpu/check_dsa.py checks the kernels against the
    # reference): the fp8 indexer and a selection by an expression, MQA 8:1.
    here = os.path.dirname(os.path.abspath(__file__))
    dsa = attnc.compile(open(os.path.join(here, "dsa_cases.attn")).read(),
                        options={"head_dims": "128", "dtypes": "bf16"})
    B, Hq, Hkv, Lq, Lk, D = 2, 8, 1, 300, 1100, 128
    q, k, v = bhld(B, Hq, Lq, D, torch.bfloat16, gen), bhld(B, Hkv, Lk, D, torch.bfloat16, gen), bhld(B, Hkv, Lk, D, torch.bfloat16, gen)
    fp8 = torch.float8_e4m3fn
    ix = (torch.randn(B, Lq, 64, 128, generator=gen, device="cuda").to(fp8),
          torch.randn(B, Lq, 64, generator=gen, device="cuda") / 64,
          torch.randn(B, Lk, 128, generator=gen, device="cuda").to(fp8))
    for name, indexer in (("ix_fp8", ix), ("by_near", None)):
        kern_s = dsa.variant(name)
        d_out, d_lse, d_idx = kern_s(q, k, v, indexer=indexer)
        out, lse, idx = at.attention(q, k, v, kern_s, indexer=indexer, return_lse=True, return_indices=True)
        same_sets = bool((torch.sort(idx, -1).values == torch.sort(d_idx, -1).values).all())
        err = ((out.double() - d_out.double()).norm() / d_out.double().norm()).item()
        report(same_sets and err < 1e-3 and tuple(idx.shape) == (B, Hkv, Lq, 64),
               f"{name} through attnc::attention_select: indices {tuple(idx.shape)} the direct call's "
               f"({'same' if same_sets else 'DIFFERENT'} sets), O rel diff {err:.1e}")
    kern_ix = dsa.variant("ix_fp8")

    def select_call(q, k, v, qI, w, kI):
        return at.attention(q, k, v, kern_ix, indexer=(qI, w, kI), return_indices=True)

    s_out, s_idx = torch.compile(select_call, fullgraph=True)(q, k, v, *ix)
    explanation = torch._dynamo.explain(select_call)(q, k, v, *ix)
    report(s_idx.shape == (B, Hkv, Lq, 64) and explanation.graph_break_count == 0,
           f"torch.compile(fullgraph=True) of a DSA call: indices {tuple(s_idx.shape)}, "
           f"{explanation.graph_break_count} graph breaks")
    try:
        at.attention(q, k, v, kern, indexer=ix)
        report(False, "an indexer for a variant without selection raised nothing")
    except attnc.Error as e:
        report(e.arg == "indexer", f"an indexer for a variant without selection: attnc.Error arg={e.arg!r}: {e}")

    # Errors name the argument.
    try:
        at.attention(q.cpu(), k, v, kern)
        report(False, "a CPU q raised nothing")
    except attnc.Error as e:
        report(e.arg == "q" and "CUDA" in str(e), f"a CPU q: attnc.Error arg={e.arg!r}: {e}")
    try:
        q96 = torch.randn(1, 4, 64, 96, device="cuda", dtype=torch.bfloat16)
        at.attention(q96, q96, q96, kern)
        report(False, "head dim 96 raised nothing")
    except attnc.Error as e:
        report(e.arg != "" and "96" in str(e), f"head dim 96: attnc.Error arg={e.arg!r}: {str(e)[:160]}")

    print("torch: all checks passed" if not failures else f"torch: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
