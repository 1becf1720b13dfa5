#!/usr/bin/env python3
"""attnc.torch's autograd on the GPU (scripts/gpu_check.sh step "wheel", with
the installed wheel; also runs against the source tree's package).

Gradients through torch.ops.attnc.attention (register_autograd, the gradient
kernels of a module compiled with backward=on), compared with the gradients
PyTorch's autograd takes through float64 attention computed here from an
explicit mask (check_torch.reference, an oracle independent of attnc):
- a causal window with GQA, qlen != klen and odd lengths, head dims 64, 128
  and 256, q/k/v as .transpose(1, 2) views of [B, L, H, D] tensors, bf16 and
  fp16;
- a loss that also uses the LSE (return_lse=True): the LSE's share is exact,
  and a loss that ignores the returned LSE skips it (lse_gradient_calls);
- rows with no allowed key (q_offset < 0): their dq exactly 0;
- packed documents (doc= input) and GPT-OSS's learned sinks (a Parameter of
  attnc.torch.Attention), whose gradient is checked too;
- score rules (a softcap, ALiBi with its slopes an input): their derivative;
- FlexAttention's gradients of the same patterns, as far from float64;
- a 2-block model: a training step under torch.compile(fullgraph=True) gives
  the eager step's parameter gradients;
- errors: a kernel compiled without backward, and a selecting variant (DSA),
  raise attnc.Error when the backward runs.

Usage: check_torch_grad.py [--examples DIR]   (one line per check; exits 1 on a failure)
"""
import argparse
import os
import sys

import torch

import attnc
import attnc.torch as at

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_torch import AttentionBlock, bhld, positions, reference  # noqa: E402

GRAD_TOL = {torch.bfloat16: 2e-2, torch.float16: 4e-3}  # check_backward.py's
failures = 0


def report(ok, what):
    global failures
    failures += not ok
    print(("ok   " if ok else "FAIL ") + what, flush=True)


def rel(a, ref):
    return ((a.double() - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def leaves(*ts):
    return [t.detach().clone().requires_grad_() for t in ts]


def reference_grads(q, k, v, allowed, dout, dlse=None, sinks=None, score=None):
    """Gradients of sum(out * dout) (+ sum(lse * dlse)) through float64
    attention: (dq, dk, dv[, dsinks])."""
    xs = leaves(q.double(), k.double(), v.double()) + ([] if sinks is None else leaves(sinks.double()))
    out, lse = reference(*xs[:3], allowed, xs[3] if sinks is not None else None, score)
    loss = (out * dout.double()).sum()
    if dlse is not None:
        loss = loss + (lse * dlse.double()).sum()
    return torch.autograd.grad(loss, xs)


def attnc_grads(q, k, v, kern, dout, dlse=None, **kw):
    """(dq, dk, dv[, sinks.grad]) of the same loss through attnc.torch.attention."""
    xs = leaves(q, k, v)
    if dlse is None:
        out = at.attention(*xs, kern, **kw)
        loss = (out.float() * dout).sum()
    else:
        out, lse = at.attention(*xs, kern, return_lse=True, **kw)
        loss = (out.float() * dout).sum() + (lse * dlse).sum()
    loss.backward()
    return [x.grad for x in xs]


def check_grads(name, got, want, tol):
    errs = [rel(g, w) for g, w in zip(got, want)]
    ok = all(e <= tol for e in errs) and not any(torch.isnan(g).any() for g in got)
    labels = ["dq", "dk", "dv", "dsinks"]
    report(ok, f"{name}: " + ", ".join(f"{l} {e:.1e}" for l, e in zip(labels, errs)) + f" (tol {tol:.0e})")
    return errs


def window_mask(lq, lk, w, q_offset=None):
    qpos, kpos = positions(lq, lk, "cuda")
    if q_offset is not None:
        qpos = torch.arange(q_offset, q_offset + lq, device="cuda").view(-1, 1)
    return ((kpos <= qpos) & (qpos - kpos < w)).view(1, 1, lq, lk)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "..", "..", "examples"))
    args = ap.parse_args()
    print(f"attnc {attnc.version()} from {os.path.dirname(attnc.__file__)}; torch {torch.__version__}")
    gen = torch.Generator(device="cuda").manual_seed(12)
    opts = {"head_dims": "64,128,256", "dtypes": "bf16,fp16", "backward": "on"}
    window_src = "attention w { mask k <= q && q - k < 256; }"
    kern = attnc.compile(window_src, options=opts, verbose=True).variant("w")
    report(kern.has_backward, "compiled with backward=on: the variant has gradient kernels")

    for dtype in (torch.bfloat16, torch.float16):
        for B, Hq, Hkv, Lq, Lk, D in [(2, 8, 2, 333, 1277, 128), (1, 4, 4, 1000, 1000, 64), (1, 4, 2, 300, 517, 256)]:
            q, k, v = bhld(B, Hq, Lq, D, dtype, gen), bhld(B, Hkv, Lk, D, dtype, gen), bhld(B, Hkv, Lk, D, dtype, gen)
            dout = torch.randn(B, Hq, Lq, D, generator=gen, device="cuda")
            want = reference_grads(q, k, v, window_mask(Lq, Lk, 256), dout)
            got = attnc_grads(q, k, v, kern, dout)
            check_grads(f"window 256 B{B} H{Hq}/{Hkv} Lq{Lq} Lk{Lk} d{D} {str(dtype)[6:]} (strided views)",
                        got, want, GRAD_TOL[dtype])

    # The LSE in the loss (as in a log-likelihood or a z-loss): its share of
    # the gradients, exact; a loss that ignores the returned LSE skips it.
    B, Hq, Hkv, Lq, Lk, D = 1, 4, 2, 400, 900, 128
    q, k, v = bhld(B, Hq, Lq, D, torch.float16, gen), bhld(B, Hkv, Lk, D, torch.float16, gen), bhld(B, Hkv, Lk, D, torch.float16, gen)
    dout = torch.randn(B, Hq, Lq, D, generator=gen, device="cuda")
    dlse = torch.randn(B, Hq, Lq, generator=gen, device="cuda")
    before = at.lse_gradient_calls
    want = reference_grads(q, k, v, window_mask(Lq, Lk, 256), dout, dlse)
    got = attnc_grads(q, k, v, kern, dout, dlse)
    check_grads(f"loss of out and lse, H{Hq}/{Hkv} Lq{Lq} Lk{Lk} d{D} fp16", got, want, GRAD_TOL[torch.float16])
    report(at.lse_gradient_calls == before + 1, f"the LSE's share taken once ({at.lse_gradient_calls - before})")
    xs = leaves(q, k, v)
    out, _ = at.attention(*xs, kern, return_lse=True)
    (out.float() * dout).sum().backward()
    report(at.lse_gradient_calls == before + 1, "return_lse=True with a loss of out only: the LSE's share skipped")

    # Rows with no allowed key: q_offset = -100 puts 100 queries before every key.
    B, Hq, Hkv, Lq, Lk, D = 1, 4, 1, 300, 700, 128
    q, k, v = bhld(B, Hq, Lq, D, torch.bfloat16, gen), bhld(B, Hkv, Lk, D, torch.bfloat16, gen), bhld(B, Hkv, Lk, D, torch.bfloat16, gen)
    dout = torch.randn(B, Hq, Lq, D, generator=gen, device="cuda")
    want = reference_grads(q, k, v, window_mask(Lq, Lk, 256, q_offset=-100), dout)
    got = attnc_grads(q, k, v, kern, dout, q_offset=-100)
    check_grads(f"q_offset -100 (100 empty rows) H{Hq}/{Hkv} Lq{Lq} Lk{Lk} d{D} bf16", got, want, 2e-2)
    report(bool((got[0][:, :, :100] == 0).all()), "empty rows: dq exactly 0")

    # Packed documents: the doc ids are an input (no gradient), qlen != klen.
    docs = attnc.compile(open(os.path.join(args.examples, "documents.attn")).read(), options=opts)
    B, H, Lq, Lk, D = 2, 4, 700, 2049, 128
    bounds = torch.sort(torch.randint(1, Lk, (B, 5), generator=gen, device="cuda"), dim=1).values
    doc = torch.searchsorted(bounds, torch.arange(Lk, device="cuda").expand(B, Lk).contiguous(), right=True).to(torch.int32)
    q, k, v = bhld(B, H, Lq, D, torch.bfloat16, gen), bhld(B, H, Lk, D, torch.bfloat16, gen), bhld(B, H, Lk, D, torch.bfloat16, gen)
    dout = torch.randn(B, H, Lq, D, generator=gen, device="cuda")
    qpos, kpos = positions(Lq, Lk, "cuda")
    allowed = (doc[:, Lk - Lq:].view(B, 1, Lq, 1) == doc.view(B, 1, 1, Lk)) & (kpos <= qpos).view(1, 1, Lq, Lk)
    want = reference_grads(q, k, v, allowed, dout)
    got = attnc_grads(q, k, v, docs.variant("documents"), dout, doc=doc)
    check_grads(f"documents (doc= input) B{B} H{H} Lq{Lq} Lk{Lk} d{D} bf16", got, want, 2e-2)

    # GPT-OSS's banded layer with learned sinks: a Parameter of the module.
    gpt = attnc.compile(open(os.path.join(args.examples, "gptoss.attn")).read(), options=opts)
    B, Hq, Hkv, L, D = 1, 8, 2, 515, 64
    q, k, v = bhld(B, Hq, L, D, torch.bfloat16, gen), bhld(B, Hkv, L, D, torch.bfloat16, gen), bhld(B, Hkv, L, D, torch.bfloat16, gen)
    sinks = torch.randn(Hq, generator=gen, device="cuda", dtype=torch.float32)
    dout = torch.randn(B, Hq, L, D, generator=gen, device="cuda")
    dlse = torch.randn(B, Hq, L, generator=gen, device="cuda")
    want = reference_grads(q, k, v, window_mask(L, L, 128), dout, dlse, sinks=sinks)
    layer = at.Attention(gpt.layer(0), sinks=torch.nn.Parameter(sinks.clone()), return_lse=True)
    report(any(n == "sinks" for n, _ in layer.named_parameters()), "Attention(sinks=Parameter): sinks is a parameter")
    xs = leaves(q, k, v)
    out, lse = layer(*xs)
    ((out.float() * dout).sum() + (lse * dlse).sum()).backward()
    check_grads(f"gptoss layer 0 (banded 128, learned sinks, loss of out and lse) H{Hq}/{Hkv} L{L} d{D} bf16",
                [x.grad for x in xs] + [layer.sinks.grad], want, 2e-2)

    # Score rules: their derivative is in the gradient kernels (a softcap
    # tight enough to bend the scores, ALiBi's slopes an input), with a loss
    # of out and lse.
    rules = attnc.compile("""
        input slope : f32[head];
        attention capped { mask k <= q && q - k < 300; score 2 * tanh(s / 2); }
        attention alibi { mask k <= q; score s + slope[h] * (k - q); }""", options=opts)
    B, Hq, Hkv, Lq, Lk, D = 2, 8, 2, 377, 801, 64
    q, k, v = bhld(B, Hq, Lq, D, torch.bfloat16, gen), bhld(B, Hkv, Lk, D, torch.bfloat16, gen), bhld(B, Hkv, Lk, D, torch.bfloat16, gen)
    q = q * 3  # scores of a few units: tanh(s / 2) far from linear
    dout = torch.randn(B, Hq, Lq, D, generator=gen, device="cuda")
    dlse = torch.randn(B, Hq, Lq, generator=gen, device="cuda")
    qpos, kpos = positions(Lq, Lk, "cuda")
    slope = torch.rand(Hq, generator=gen, device="cuda") / 16
    for name, allowed, score, inputs in [
            ("capped", window_mask(Lq, Lk, 300), lambda s: 2 * torch.tanh(s / 2), {}),
            ("alibi", (kpos <= qpos).view(1, 1, Lq, Lk),
             lambda s: s + slope.double().view(1, -1, 1, 1) * (kpos - qpos).double().view(1, 1, Lq, Lk),
             {"slope": slope})]:
        want = reference_grads(q, k, v, allowed, dout, dlse, score=score)
        got = attnc_grads(q, k, v, rules.variant(name), dout, dlse, **inputs)
        check_grads(f"score rule {name}, loss of out and lse, B{B} H{Hq}/{Hkv} Lq{Lq} Lk{Lk} d{D} bf16",
                    got, want, GRAD_TOL[torch.bfloat16])

    check_flex(kern, docs.variant("documents"), gen)
    check_compiled_training(kern)

    # Errors: no gradient kernels; a selecting variant.
    plain = attnc.compile(window_src, options={"head_dims": "64", "dtypes": "bf16"}).variant("w")
    xs = leaves(*(bhld(1, 2, 64, 64, torch.bfloat16, gen) for _ in range(3)))
    try:
        at.attention(*xs, plain).float().sum().backward()
        report(False, "a kernel compiled without backward: loss.backward() raised nothing")
    except attnc.Error as e:
        report("backward" in str(e), f"a kernel compiled without backward: attnc.Error {e.status}: {str(e)[:120]}")
    here = os.path.dirname(os.path.abspath(__file__))
    dsa = attnc.compile(open(os.path.join(here, "dsa_cases.attn")).read(),
                        options={"head_dims": "128", "dtypes": "bf16"})
    xs = leaves(bhld(1, 4, 100, 128, torch.bfloat16, gen), bhld(1, 1, 300, 128, torch.bfloat16, gen),
                bhld(1, 1, 300, 128, torch.bfloat16, gen))
    try:
        at.attention(*xs, dsa.variant("by_near")).float().sum().backward()
        report(False, "a selecting variant: loss.backward() raised nothing")
    except attnc.Error as e:
        report("select" in str(e), f"a selecting variant: attnc.Error {e.status}: {str(e)[:120]}")

    print("torch grad: all checks passed" if not failures else f"torch grad: {failures} failures")
    return 1 if failures else 0


def check_flex(window, documents, gen):
    """attnc's gradients against FlexAttention's, both against float64."""
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    except ImportError as e:
        report(False, f"FlexAttention unavailable: {e}")
        return
    flex = torch.compile(flex_attention)
    B, Hq, Hkv, L, D = 1, 8, 2, 2048, 128
    q, k, v = bhld(B, Hq, L, D, torch.bfloat16, gen), bhld(B, Hkv, L, D, torch.bfloat16, gen), bhld(B, Hkv, L, D, torch.bfloat16, gen)
    dout = torch.randn(B, Hq, L, D, generator=gen, device="cuda")
    doc = (torch.arange(L, device="cuda") * 7 // L).to(torch.int32).view(1, L)  # 7 documents
    cases = [("sliding window 256", window, {},
              lambda b, h, qi, ki: (ki <= qi) & (qi - ki < 256), window_mask(L, L, 256)),
             ("packed documents (7)", documents, {"doc": doc},
              lambda b, h, qi, ki: (doc[0, qi] == doc[0, ki]) & (ki <= qi),
              ((doc.view(1, 1, L, 1) == doc.view(1, 1, 1, L)) & window_mask(L, L, L)))]
    for name, kern, inputs, mask_mod, allowed in cases:
        want = reference_grads(q, k, v, allowed, dout)
        got = attnc_grads(q, k, v, kern, dout, **inputs)
        xs = leaves(q, k, v)
        block_mask = create_block_mask(mask_mod, None, None, L, L, device="cuda")
        out = flex(*xs, block_mask=block_mask, enable_gqa=True)
        (out.float() * dout).sum().backward()
        ours = [rel(g, w) for g, w in zip(got, want)]
        theirs = [rel(x.grad, w) for x, w in zip(xs, want)]
        ok = all(a <= max(2 * b, GRAD_TOL[torch.bfloat16]) for a, b in zip(ours, theirs))
        report(ok, f"{name} vs FlexAttention, L{L} H{Hq}/{Hkv} d{D} bf16: rel err to float64 of dq/dk/dv "
                   f"attnc {'/'.join(f'{e:.1e}' for e in ours)}, Flex {'/'.join(f'{e:.1e}' for e in theirs)}")


def check_compiled_training(kern):
    """A training step of a 2-block model: compiled (fullgraph) == eager."""
    torch.manual_seed(4)
    model = torch.nn.Sequential(AttentionBlock(kern), AttentionBlock(kern)).cuda().to(torch.bfloat16)
    x = torch.randn(2, 1000, 256, device="cuda", dtype=torch.bfloat16)

    def step(fn):
        model.zero_grad(set_to_none=True)
        fn(x).float().square().mean().backward()
        return [p.grad.clone() for p in model.parameters()]

    eager = step(model)
    compiled = step(torch.compile(model, fullgraph=True))
    errs = [rel(c, e.double()) for c, e in zip(compiled, eager)]
    report(max(errs) < 5e-2, f"torch.compile(fullgraph=True) training step of a 2-block model: parameter "
                             f"gradients vs eager, max rel diff {max(errs):.1e} over {len(errs)} tensors")


if __name__ == "__main__":
    sys.exit(main())
