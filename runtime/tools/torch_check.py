#!/usr/bin/env python3
"""GPU check of the attnc Python package with real torch tensors.

    ATTNC_LIBRARY=build/lib/libattnrt.so python3 runtime/tools/torch_check.py [CUBIN]

Needs a GPU, torch and the runtime test fixtures (runtime/testdata: hand-written
kernels, not attnc output). Run by scripts/gpu_runtime_check.sh. Launches the
fixtures through attnc.load / Module.variant / Module.layer / Kernel.__call__
on random bf16 and fp16 tensors and compares O and LSE with a float64 torch
reference (rel L2 of O <= 1e-2, |dLSE| <= 1e-2, -inf LSE exactly on empty
rows): GQA, MQA, decode, every head dim, a transposed q view, explicit
offsets (including negative ones, which empty rows), a model layer with
sinks and a token-indexed input, a caller's stream, preallocated outputs,
and a cubin with its sidecar manifest if CUBIN is given. Then checks that
bad arguments raise attnc.Error before anything is launched (the output is
untouched). Prints one line per check and "N passed, M failed"; exits 1 on a
failure.
"""
import math
import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
TESTDATA = os.path.join(ROOT, "runtime", "testdata")

import torch  # noqa: E402

import attnc  # noqa: E402

passed = failed = 0


def report(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", what, (": " + detail) if detail else ""), flush=True)


def reference(q, k, v, q_offset, k_offset, sinks=None, doc=None):
    """float64 attention with the fixtures' masks: causal, and (with doc)
    same-document; sinks join the denominator."""
    B, Hq, Lq, D = q.shape
    Hkv, Lk = k.shape[1], k.shape[2]
    G = Hq // Hkv
    qf = q.double()
    kf = k.double().repeat_interleave(G, dim=1)
    vf = v.double().repeat_interleave(G, dim=1)
    s = qf @ kf.transpose(-1, -2) / math.sqrt(D)
    dev = q.device
    qpos = torch.arange(Lq, device=dev) + q_offset
    kpos = torch.arange(Lk, device=dev) + k_offset
    allowed = (kpos[None, :] <= qpos[:, None])[None, None].expand(B, Hq, Lq, Lk)
    if doc is not None:
        dq = doc[:, qpos].long()
        dk = doc[:, kpos].long()
        allowed = allowed & (dq[:, None, :, None] == dk[:, None, None, :])
    s = s.masked_fill(~allowed, float("-inf"))
    if sinks is not None:
        sink = sinks.double()[None, :, None, None].expand(B, Hq, Lq, 1)
        s = torch.cat([s, sink], dim=-1)
    m = s.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    e = torch.exp(s - m)
    den = e.sum(dim=-1, keepdim=True)
    p = torch.where(den > 0, e / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(e))
    o = p[..., :Lk] @ vf
    lse = torch.where(den > 0, m + torch.log(torch.where(den > 0, den, torch.ones_like(den))),
                      torch.full_like(den, float("-inf"))).squeeze(-1)
    return o, lse


def compare(name, out, lse, ref_o, ref_lse):
    err = (out.double() - ref_o).norm() / ref_o.norm().clamp_min(1e-30)
    inf_ref, inf_got = torch.isinf(ref_lse), torch.isinf(lse)
    inf_ok = bool(torch.equal(inf_ref, inf_got)) and bool((lse[inf_got] < 0).all())
    fin = ~inf_ref & ~inf_got
    lse_err = (lse.double()[fin] - ref_lse[fin]).abs().max().item() if fin.any() else 0.0
    ok = err.item() <= 1e-2 and lse_err <= 1e-2 and inf_ok and not torch.isnan(out).any()
    report(ok, name, "rel L2(O) = %.2e, max |dLSE| = %.2e%s"
           % (err.item(), lse_err, "" if inf_ok else ", -inf LSE mismatch"))


def run_case(kern, name, B, Hq, Hkv, Lq, Lk, D, dtype=torch.bfloat16, q_offset=None,
             k_offset=None, transposed_q=False, with_doc=False, stream=None, preallocate=False):
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(zlib.crc32(name.encode()))
    if transposed_q:
        q = torch.randn(B, Lq, Hq, D, device=dev, dtype=dtype, generator=g).transpose(1, 2)
    else:
        q = torch.randn(B, Hq, Lq, D, device=dev, dtype=dtype, generator=g)
    k = torch.randn(B, Hkv, Lk, D, device=dev, dtype=dtype, generator=g)
    v = torch.randn(B, Hkv, Lk, D, device=dev, dtype=dtype, generator=g)
    qo = Lk - Lq if q_offset is None else q_offset
    ko = 0 if k_offset is None else k_offset
    kwargs = {}
    sinks = doc = None
    if with_doc:
        T = max(qo + Lq, ko + Lk)
        doc = (torch.arange(T, device=dev)[None, :] + torch.arange(B, device=dev)[:, None]) // 37
        doc = doc.to(torch.int32).contiguous()
        sinks = torch.randn(Hq, device=dev, dtype=torch.float32, generator=g)
        kwargs = dict(sinks=sinks, inputs={"doc": doc})
    if q_offset is not None:
        kwargs["q_offset"] = q_offset
    if k_offset is not None:
        kwargs["k_offset"] = k_offset
    if preallocate:
        kwargs["out"] = torch.full((B, Hq, Lq, D), float("nan"), device=dev, dtype=dtype)
        kwargs["lse"] = torch.full((B, Hq, Lq), float("nan"), device=dev, dtype=torch.float32)
    if stream is not None:
        stream.wait_stream(torch.cuda.current_stream())  # the inputs were made on the default stream
        with torch.cuda.stream(stream):
            out, lse = kern(q, k, v, **kwargs)  # torch's current stream is `stream`
        stream.synchronize()
    else:
        out, lse = kern(q, k, v, **kwargs)
        torch.cuda.synchronize()
    if preallocate:
        same = out.data_ptr() == kwargs["out"].data_ptr() and lse.data_ptr() == kwargs["lse"].data_ptr()
        report(same, name + " (outputs written in place)")
    ref_o, ref_lse = reference(q, k, v, qo, ko, sinks, doc)
    compare(name, out, lse, ref_o, ref_lse)


def main():
    print("torch %s, device %s, libattnrt %s, %s" % (torch.__version__, torch.cuda.get_device_name(),
                                                     attnc.version(), attnc.driver_info()))
    causal_mod = attnc.load(os.path.join(TESTDATA, "naive_attention_causal.ptx"))
    model = attnc.load(os.path.join(TESTDATA, "naive_attention_model.ptx"))
    causal = causal_mod.variant("causal")
    report(model.num_layers == 4 and [model.layer(i).name for i in range(4)]
           == ["causal", "doc_causal_sink", "causal", "doc_causal_sink"], "model layer table")

    run_case(causal, "causal bf16 D=64 B=2 H=4 L=128", 2, 4, 4, 128, 128, 64)
    run_case(causal, "causal bf16 D=128 GQA 8/2 Lq=77 Lk=200", 1, 8, 2, 77, 200, 128)
    run_case(causal, "causal bf16 D=256 MQA 4/1 L=65", 1, 4, 1, 65, 65, 256)
    run_case(causal, "causal fp16 D=128 decode Lq=1 Lk=333", 3, 4, 2, 1, 333, 128, torch.float16)
    run_case(causal, "causal bf16 D=64 transposed q view", 2, 3, 3, 50, 50, 64, transposed_q=True)
    run_case(causal, "causal bf16 D=64 q_offset=-20 (empty rows)", 1, 2, 1, 40, 40, 64, q_offset=-20)
    run_case(causal, "causal fp16 D=64 offsets 1000/990", 1, 2, 2, 30, 45, 64, torch.float16,
             q_offset=1000, k_offset=990)
    run_case(causal, "causal bf16 D=128 on a caller's stream", 2, 4, 2, 96, 96, 128,
             stream=torch.cuda.Stream())
    run_case(causal, "causal bf16 D=128 preallocated out/lse", 1, 4, 4, 70, 70, 128, preallocate=True)
    run_case(model.layer(1), "model layer 1 (doc_causal_sink) bf16 D=128", 2, 4, 2, 90, 120, 128,
             with_doc=True)
    run_case(model.layer(3), "model layer 3 (doc_causal_sink) fp16 D=64 offsets", 1, 2, 1, 20, 64, 64,
             torch.float16, q_offset=30, k_offset=0, with_doc=True)
    run_case(model.layer(0), "model layer 0 (causal) bf16 D=256", 1, 2, 2, 33, 33, 256)

    if len(sys.argv) > 1:
        try:
            cub = attnc.load(sys.argv[1]).variant("causal")
            run_case(cub, "cubin + sidecar causal bf16 D=128", 1, 4, 4, 70, 70, 128)
        except attnc.Error as e:
            report(False, "cubin load and launch", str(e))

    # Bad arguments raise before anything is launched.
    dev = torch.device("cuda")
    q = torch.randn(1, 2, 16, 64, device=dev, dtype=torch.bfloat16)
    out = torch.full_like(q, 7.0)
    lse = torch.full((1, 2, 16), 7.0, device=dev)
    bad_v = torch.randn(1, 2, 15, 64, device=dev, dtype=torch.bfloat16)
    try:
        causal(q, q, bad_v, out=out, lse=lse)
        report(False, "bad v shape raises attnc.Error", "no error")
    except attnc.Error as e:
        torch.cuda.synchronize()
        untouched = bool((out == 7.0).all()) and bool((lse == 7.0).all())
        report(e.arg == "v" and e.status == "ATTNRT_ERROR_INVALID_ARGUMENT" and untouched,
               "bad v shape raises attnc.Error and launches nothing", str(e))
    try:
        causal(q.float(), q.float(), q.float())
        report(False, "f32 q raises attnc.Error", "no error")
    except attnc.Error as e:
        report(e.arg == "q", "f32 q raises attnc.Error", str(e))
    try:
        causal(q.cpu(), q, q)
        report(False, "a CPU tensor raises attnc.Error", "no error")
    except attnc.Error as e:
        report(e.arg == "q", "a CPU tensor raises attnc.Error", str(e))
    try:
        model.layer(1)(q, q, q)
        report(False, "missing sinks raise attnc.Error", "no error")
    except attnc.Error as e:
        report(e.arg == "sinks", "missing sinks raise attnc.Error", str(e))

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
