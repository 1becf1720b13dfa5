#!/usr/bin/python3
"""Cross-check `attnc run --reference` against an independent numpy implementation.

The numpy side below is written from shared/language.md's meaning, not from the
C++ executor: positions q = row + q_offset, k = col + k_offset (defaults
klen - qlen and 0); s = scale * q.k (scale 1/sqrt(D) unless given); the score
rule rewrites s before masking; topk keeps, per query, the K allowed keys with
the highest selection score (ties: lower key first), shared by all heads; a
sink S_h joins the softmax denominator; an empty row gives O = 0, LSE = -inf.

For each case it writes an .attn file and random .npy inputs (fp32, fp64, fp16
and bf16-as-uint16/int16), runs attnc with --dtype-out f64, and requires O and
LSE to agree to 1e-12 (relative, with an absolute floor of 1e-12 * max|V|) and
the topk indices to agree exactly. A second part checks the command's error
handling: exit codes 1 and 2, messages naming the argument, no output written.

Run:  /usr/bin/python3 test/reference/crosscheck.py --attnc build/bin/attnc
(needs numpy; ctest runs it as reference.crosscheck).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

RTOL = 1e-12


# --------------------------------------------------------------------------
# The numpy implementation of the meaning
# --------------------------------------------------------------------------

def attention(Q, K, V, mask, score=None, scale=None, sinks=None, topk=None, select=None,
              q_offset=None, k_offset=0):
    """O [B,Hq,Lq,Dv], LSE [B,Hq,Lq] and (for topk) indices [B,Hkv,Lq,K].

    mask(b, h, q, k) -> bool array; score(b, h, q, k, s) -> float array;
    select(b, q, k) -> selection score array (no h); all broadcast over
    b [B,1,1,1], h [1,Hq,1,1], q [1,1,Lq,1], k [1,1,1,Lk] (absolute positions).
    """
    B, Hq, Lq, D = Q.shape
    Hkv, Lk = K.shape[1], K.shape[2]
    G = Hq // Hkv
    if q_offset is None:
        q_offset = Lk - Lq
    if scale is None:
        scale = 1.0 / np.sqrt(D)
    Kr = np.repeat(K, G, axis=1)
    Vr = np.repeat(V, G, axis=1)
    b = np.arange(B).reshape(B, 1, 1, 1)
    h = np.arange(Hq).reshape(1, Hq, 1, 1)
    q = (np.arange(Lq) + q_offset).reshape(1, 1, Lq, 1)
    k = (np.arange(Lk) + k_offset).reshape(1, 1, 1, Lk)
    S = scale * np.einsum("bhqd,bhkd->bhqk", Q, Kr)
    if score is not None:
        S = np.broadcast_to(score(b, h, q, k, S), S.shape).astype(np.float64)
    allowed = np.broadcast_to(mask(b, h, q, k), S.shape).copy()
    indices = None
    if topk is not None:
        # One selection per (b, query), shared by every head.
        sel_score = np.broadcast_to(select(b[:, :, :, :], q, k), (B, 1, Lq, Lk))[:, 0]
        indices = np.full((B, Hkv, Lq, topk), -1, dtype=np.int64)
        keep = np.zeros((B, Lq, Lk), dtype=bool)
        for bi in range(B):
            for r in range(Lq):
                cand = np.nonzero(allowed[bi, 0, r])[0]
                sc = sel_score[bi, r, cand]
                order = cand[np.lexsort((cand, -sc))][:topk]  # score desc, then key asc
                indices[bi, :, r, :len(order)] = order
                keep[bi, r, order] = True
        allowed &= keep[:, None, :, :]
    masked = np.where(allowed, S, -np.inf)
    m = masked.max(axis=-1)
    if sinks is not None:
        m = np.maximum(m, sinks.reshape(1, Hq, 1))
    finite = np.isfinite(m)
    m0 = np.where(finite, m, 0.0)
    P = np.where(allowed, np.exp(masked - m0[..., None]), 0.0)
    den = P.sum(axis=-1)
    if sinks is not None:
        den = den + np.exp(sinks.reshape(1, Hq, 1) - m0)
    num = np.einsum("bhqk,bhkd->bhqd", P, Vr)
    with np.errstate(invalid="ignore", divide="ignore"):
        O = np.where(den[..., None] > 0, num / np.where(den > 0, den, 1)[..., None], 0.0)
        lse = np.where(finite, m0 + np.log(np.where(den > 0, den, 1)), -np.inf)
    return O, lse, indices


def indexer_scores(qI, w, kI):
    """I[b, t, s] = sum_j w[b, t, j] * relu(qI[b, t, j] . kI[b, s])."""
    dots = np.einsum("btjd,bsd->btjs", qI, kI)
    return np.einsum("btj,btjs->bts", w, np.maximum(dots, 0.0))


# --------------------------------------------------------------------------
# Input encodings
# --------------------------------------------------------------------------

def to_bf16_bits(x):
    """float -> bf16 bits (round to nearest even), as uint16."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def encode(x, dtype):
    """(array to save, its exact float64 value) for a float tensor."""
    if dtype == "f64":
        return x, x
    if dtype == "f32":
        y = x.astype(np.float32)
        return y, y.astype(np.float64)
    if dtype == "f16":
        y = x.astype(np.float16)
        return y, y.astype(np.float64)
    if dtype in ("bf16u", "bf16i"):
        bits = to_bf16_bits(x)
        val = bf16_value(bits)
        return (bits if dtype == "bf16u" else bits.view(np.int16)), val
    raise ValueError(dtype)


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

class Case:
    def __init__(self, name, source, B, Hq, Hkv, Lq, Lk, D, mask, variant=None, layer=None,
                 score=None, scale=None, sink=False, topk=None, select=None, indexer=None,
                 q_offset=None, k_offset=None, inputs=None, dtype="f32", Dv=None, defines=None):
        self.__dict__.update(locals())
        del self.__dict__["self"]


def cases():
    out = []
    out.append(Case("causal", "attention causal { mask k <= q; }",
                    2, 4, 4, 33, 33, 64, lambda b, h, q, k: k <= q))
    out.append(Case("causal_bf16", "attention causal { mask k <= q; }",
                    1, 2, 1, 17, 40, 32, lambda b, h, q, k: k <= q, dtype="bf16u"))
    out.append(Case("sliding_window_offsets",
                    "param window = 8;\nattention sw { mask k <= q && q - k < window; }",
                    2, 3, 3, 13, 29, 16, lambda b, h, q, k: (k <= q) & (q - k < 5),
                    q_offset=40, k_offset=30, defines={"window": "5"}, dtype="f16"))
    out.append(Case("sliding_window_empty_rows",
                    "attention sw { mask k <= q && q - k < 4; }",
                    1, 2, 2, 9, 11, 8, lambda b, h, q, k: (k <= q) & (q - k < 4),
                    q_offset=-3, k_offset=0, dtype="f64"))
    doc = lambda rng, B, L: np.sort(rng.integers(0, 4, size=(B, L)), axis=1).astype(np.int32)
    out.append(Case("documents",
                    "input doc : i32[batch, token];\n"
                    "attention docs { mask doc[b, q] == doc[b, k] && k <= q; }",
                    2, 4, 2, 40, 40, 16, None, inputs={"doc": ("token2", doc)}))
    out.append(Case("prefix_lm",
                    "input prefix : i32[batch];\n"
                    "attention plm { mask k < prefix[b] || k <= q; }",
                    3, 2, 1, 20, 20, 16, None,
                    inputs={"prefix": ("batch", lambda rng, B, L: rng.integers(0, L, size=B).astype(np.int64))}))
    out.append(Case("longformer_globals",
                    "input is_global : bool[batch, token];\n"
                    "attention lf { mask is_global[b, q] || is_global[b, k] || abs(q - k) <= 2; }",
                    2, 2, 2, 24, 24, 8, None,
                    inputs={"is_global": ("token2", lambda rng, B, L: rng.random((B, L)) < 0.15)}))
    out.append(Case("alibi",
                    "input slope : f32[head];\n"
                    "attention alibi { mask k <= q; score s + slope[h] * (k - q); }",
                    2, 4, 4, 25, 31, 32, lambda b, h, q, k: k <= q,
                    inputs={"slope": ("head", lambda rng, H, L: (2.0 ** -np.arange(1, H + 1)).astype(np.float32))}))
    out.append(Case("softcap",
                    "param cap = 50.0;\n"
                    "attention gemma { mask k <= q && q - k < 16; score cap * tanh(s / cap); scale 0.9; }",
                    1, 4, 2, 30, 30, 16, lambda b, h, q, k: (k <= q) & (q - k < 16),
                    score=lambda b, h, q, k, s: 50.0 * np.tanh(s / 50.0), scale=0.9, dtype="bf16i"))
    out.append(Case("sink",
                    "attention oss { mask k <= q && q - k < 6; sink; }",
                    2, 8, 2, 19, 19, 16, lambda b, h, q, k: (k <= q) & (q - k < 6), sink=True))
    out.append(Case("sink_empty_rows",
                    "attention oss { mask k <= q; sink; }",
                    1, 4, 4, 6, 6, 8, lambda b, h, q, k: k <= q, sink=True, q_offset=-3))
    out.append(Case("gqa_mqa",
                    "attention causal { mask k <= q; }",
                    2, 6, 1, 11, 23, 32, lambda b, h, q, k: k <= q, Dv=24))
    out.append(Case("topk_ties",
                    "attention t { mask k <= q; select topk(5) by (k * 7) % 3; }",
                    2, 4, 2, 21, 21, 16, lambda b, h, q, k: k <= q,
                    topk=5, select=lambda b, q, k: (k * 7) % 3))
    out.append(Case("topk_float_score_offsets",
                    "attention t { mask abs(q - k) <= 9; select topk(4) by 0.5 * min(q - k, 3) + k / 4; }",
                    1, 2, 1, 15, 22, 8, lambda b, h, q, k: np.abs(q - k) <= 9,
                    topk=4, select=lambda b, q, k: 0.5 * np.minimum(q - k, 3) + k // 4,
                    q_offset=2, k_offset=-3))
    out.append(Case("dsa_indexer",
                    "attention dsa { mask k <= q; select topk(6) by indexer(heads = 4, dim = 8, dtype = fp8); }",
                    2, 4, 2, 18, 18, 16, lambda b, h, q, k: k <= q, topk=6, indexer=(4, 8)))
    out.append(Case("model_layer",
                    "attention global { mask k <= q; }\n"
                    "attention local { mask k <= q && q - k < 3; }\n"
                    "model m { layers 6; layer i: (i + 1) % 3 == 0 ? global : local; }",
                    1, 2, 2, 12, 12, 16, lambda b, h, q, k: (k <= q) & (q - k < 3), layer=4))
    return out


def run_case(attnc, case, tmp, rng):
    d = os.path.join(tmp, case.name)
    os.makedirs(d)
    src = os.path.join(d, "p.attn")
    with open(src, "w") as f:
        f.write(case.source + "\n")
    B, Hq, Hkv, Lq, Lk, D = case.B, case.Hq, case.Hkv, case.Lq, case.Lk, case.D
    Dv = case.Dv or D
    tensors = {}
    for name, shape in (("q", (B, Hq, Lq, D)), ("k", (B, Hkv, Lk, D)), ("v", (B, Hkv, Lk, Dv))):
        saved, val = encode(rng.standard_normal(shape), case.dtype)
        np.save(os.path.join(d, name + ".npy"), saved)
        tensors[name] = val
    cmd = [attnc, "run", "--reference", src, "--q", os.path.join(d, "q.npy"),
           "--k", os.path.join(d, "k.npy"), "--v", os.path.join(d, "v.npy"),
           "--out", os.path.join(d, "o.npy"), "--lse", os.path.join(d, "lse.npy"),
           "--dtype-out", "f64"]
    if case.layer is not None:
        cmd += ["--layer", str(case.layer)]
    for k, v in (case.defines or {}).items():
        cmd += ["-D", "%s=%s" % (k, v)]
    if case.q_offset is not None:
        cmd += ["--q-offset", str(case.q_offset)]
    if case.k_offset is not None:
        cmd += ["--k-offset", str(case.k_offset)]
    q_off = case.q_offset if case.q_offset is not None else Lk - Lq
    k_off = case.k_offset or 0
    T = max(q_off + Lq, k_off + Lk)

    # Runtime inputs, and the numpy view of them.
    values = {}
    for name, (kind, make) in (case.inputs or {}).items():
        arr = make(rng, Hq if kind == "head" else B, T)
        path = os.path.join(d, name + ".npy")
        np.save(path, arr)
        cmd += ["--input", "%s=%s" % (name, path)]
        values[name] = arr
    mask = case.mask
    score = case.score
    if case.name == "documents":
        doc = values["doc"].astype(np.int64)
        mask = lambda b, h, q, k: (doc[b, q] == doc[b, k]) & (k <= q)  # fancy indexing broadcasts
    if case.name == "prefix_lm":
        pre = values["prefix"]
        mask = lambda b, h, q, k: (k < pre[b]) | (k <= q)
    if case.name == "longformer_globals":
        g = values["is_global"]
        mask = lambda b, h, q, k: g[b, q] | g[b, k] | (np.abs(q - k) <= 2)
    if case.name == "alibi":
        slope = values["slope"].astype(np.float64)
        score = lambda b, h, q, k, s: s + slope[h] * (k - q)

    sinks = None
    if case.sink:
        sinks32 = (rng.standard_normal(Hq) * 2).astype(np.float32)
        np.save(os.path.join(d, "sinks.npy"), sinks32)
        cmd += ["--sinks", os.path.join(d, "sinks.npy")]
        sinks = sinks32.astype(np.float64)
    select = case.select
    if case.indexer:
        HI, dI = case.indexer
        # Small integers: exact in any order of summation, and full of ties.
        qI = rng.integers(-2, 3, size=(B, Lq, HI, dI)).astype(np.float32)
        w = rng.integers(0, 3, size=(B, Lq, HI)).astype(np.float32)
        kI = rng.integers(-2, 3, size=(B, Lk, dI)).astype(np.float32)
        paths = []
        for nm, arr in (("qI", qI), ("w", w), ("kI", kI)):
            paths.append(os.path.join(d, nm + ".npy"))
            np.save(paths[-1], arr)
        cmd += ["--indexer", ",".join(paths)]
        I = indexer_scores(qI.astype(np.float64), w.astype(np.float64), kI.astype(np.float64))
        select = lambda b, q, k: I[:, q[0, 0, :, 0] - q_off, :][:, None][..., k[0, 0, 0] - k_off]
    if case.topk:
        cmd += ["--indices", os.path.join(d, "idx.npy")]

    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return "attnc failed (exit %d): %s\n%s" % (res.returncode, " ".join(cmd), res.stderr)
    O, lse, idx = attention(tensors["q"], tensors["k"], tensors["v"], mask, score=score,
                            scale=case.scale, sinks=sinks, topk=case.topk, select=select,
                            q_offset=q_off, k_offset=k_off)
    gotO = np.load(os.path.join(d, "o.npy"))
    gotL = np.load(os.path.join(d, "lse.npy"))
    problems = []
    if gotO.dtype != np.float64 or gotO.shape != O.shape:
        problems.append("O: dtype %s shape %s, expected float64 %s" % (gotO.dtype, gotO.shape, O.shape))
    elif not np.allclose(gotO, O, rtol=RTOL, atol=RTOL * np.abs(tensors["v"]).max()):
        problems.append("O differs: max abs diff %g" % np.abs(gotO - O).max())
    if gotL.shape != lse.shape:
        problems.append("LSE shape %s, expected %s" % (gotL.shape, lse.shape))
    elif not (np.array_equal(np.isneginf(gotL), np.isneginf(lse)) and
              np.allclose(gotL[np.isfinite(lse)], lse[np.isfinite(lse)], rtol=RTOL, atol=RTOL)):
        fin = np.isfinite(lse) & np.isfinite(gotL)
        problems.append("LSE differs: %d rows disagree on -inf; max abs diff %g"
                        % (int((np.isneginf(gotL) != np.isneginf(lse)).sum()),
                           np.abs(gotL[fin] - lse[fin]).max() if fin.any() else 0.0))
    if np.isnan(gotO).any() or np.isnan(gotL).any():
        problems.append("NaN in the output")
    if case.topk:
        gotI = np.load(os.path.join(d, "idx.npy"))
        if gotI.dtype != np.int64 or not np.array_equal(gotI, idx):
            diff = np.argwhere(gotI != idx) if gotI.shape == idx.shape else []
            problems.append("indices differ (dtype %s shape %s; first differences at %s)"
                            % (gotI.dtype, gotI.shape, [list(map(int, x)) for x in diff[:3]]))
    empty = int(np.isneginf(lse).sum())
    return "; ".join(problems) if problems else "ok (%d empty rows)" % empty


# --------------------------------------------------------------------------
# Command-line error handling
# --------------------------------------------------------------------------

def check_errors(attnc, tmp):
    """(description, problem or None) for each bad invocation."""
    d = os.path.join(tmp, "errors")
    os.makedirs(d)
    src = os.path.join(d, "p.attn")
    with open(src, "w") as f:
        f.write("input doc : i32[batch, token];\n"
                "attention docs { mask doc[b, q] == doc[b, k] && k <= q; }\n"
                "attention sk { mask k <= q; sink; }\n"
                "attention causal { mask k <= q; }\n")
    rng = np.random.default_rng(5)
    p = lambda n: os.path.join(d, n)
    np.save(p("q.npy"), rng.standard_normal((1, 4, 8, 16)).astype(np.float32))
    np.save(p("k.npy"), rng.standard_normal((1, 2, 8, 16)).astype(np.float32))
    np.save(p("v.npy"), rng.standard_normal((1, 2, 8, 16)).astype(np.float32))
    np.save(p("k3.npy"), rng.standard_normal((1, 3, 8, 16)).astype(np.float32))
    np.save(p("kd.npy"), rng.standard_normal((1, 2, 8, 32)).astype(np.float32))
    np.save(p("ki.npy"), np.zeros((1, 2, 8, 16), dtype=np.int32))
    np.save(p("doc.npy"), np.zeros((1, 8), dtype=np.int32))
    np.save(p("docf.npy"), np.zeros((1, 8), dtype=np.float32))
    np.save(p("sinks.npy"), np.zeros(4, dtype=np.float32))
    with open(p("q.npy"), "rb") as f:
        data = f.read()
    with open(p("trunc.npy"), "wb") as f:
        f.write(data[:-7])
    np.save(p("fortran.npy"), np.asfortranarray(rng.standard_normal((1, 4, 8, 16)).astype(np.float32)))

    base = [attnc, "run", "--reference", src, "--q", p("q.npy"), "--k", p("k.npy"), "--v", p("v.npy")]
    out = ["--out", p("o.npy"), "--lse", p("lse.npy")]
    checks = [
        ("wrong K shape", base[:6] + ["--k", p("kd.npy"), "--v", p("v.npy"), "--variant", "causal"] + out,
         1, ["--k", "kd.npy", "D=16"]),
        ("Hq % Hkv", base[:6] + ["--k", p("k3.npy"), "--v", p("v.npy"), "--variant", "causal"] + out,
         1, ["Hq=4", "Hkv=3"]),
        ("missing input", base + ["--variant", "docs"] + out, 1, ["doc", "not given"]),
        ("input dtype", base + ["--variant", "docs", "--input", "doc=" + p("docf.npy")] + out,
         1, ["--input doc", "docf.npy", "<i4 or <i8", "<f4"]),
        ("missing sinks", base + ["--variant", "sk"] + out, 1, ["--sinks", "Hq=4"]),
        ("truncated npy", [attnc, "run", "--reference", src, "--q", p("trunc.npy"), "--k", p("k.npy"),
                           "--v", p("v.npy"), "--variant", "causal"] + out, 1, ["--q", "trunc.npy", "truncated"]),
        ("fortran order", [attnc, "run", "--reference", src, "--q", p("fortran.npy"), "--k", p("k.npy"),
                           "--v", p("v.npy"), "--variant", "causal"] + out, 1, ["fortran"]),
        ("int K", base[:6] + ["--k", p("ki.npy"), "--v", p("v.npy"), "--variant", "causal"] + out,
         1, ["--k", "ki.npy", "<i4"]),
        ("offset out of the token axis", base + ["--variant", "docs", "--input", "doc=" + p("doc.npy"),
                                                 "--q-offset", "3"] + out, 1, ["--q-offset", "[3, 11)", "[0, 8)"]),
        ("unknown variant", base + ["--variant", "caual"] + out, 1, ["caual", "did you mean 'causal'"]),
        ("no variant chosen", base + out, 1, ["--variant"]),
        ("--indices without topk", base + ["--variant", "causal", "--indices", p("i.npy")] + out, 1, ["--indices"]),
        ("unknown flag", base + ["--variant", "causal", "--frobnicate"] + out, 2, ["--frobnicate"]),
        ("missing value", base + ["--variant", "causal"] + out + ["--q-offset"], 2, ["--q-offset", "missing value"]),
        ("bad integer", base + ["--variant", "causal", "--q-offset", "x1"] + out, 2, ["--q-offset"]),
        ("missing --out", base + ["--variant", "causal"], 2, ["--out"]),
        # Without --reference the GPU runs the kernel: float32 tensors are refused
        # before anything else (kernels take bf16 or fp16).
        ("no --reference", [attnc, "run", src, "--q", p("q.npy"), "--k", p("k.npy"), "--v", p("v.npy"),
                            "--variant", "causal"] + out, 1, ["the GPU kernels take bf16", "float32"]),
    ]
    results = []
    for desc, cmd, want_rc, needles in checks:
        for f in ("o.npy", "lse.npy", "i.npy"):
            if os.path.exists(p(f)):
                os.unlink(p(f))
        res = subprocess.run(cmd, capture_output=True, text=True)
        problem = None
        if res.returncode != want_rc:
            problem = "exit %d, expected %d: %s" % (res.returncode, want_rc, res.stderr.strip())
        else:
            missing = [n for n in needles if n not in res.stderr]
            if missing:
                problem = "message lacks %s: %s" % (missing, res.stderr.strip())
            elif any(os.path.exists(p(f)) for f in ("o.npy", "lse.npy", "i.npy")):
                problem = "an output file was written"
            elif [f for f in os.listdir(d) if ".tmp." in f]:
                problem = "a temporary file was left behind"
        results.append((desc, problem))
    # --help succeeds; a good run writes every output and nothing else.
    res = subprocess.run([attnc, "run", "--help"], capture_output=True, text=True)
    results.append(("--help", None if res.returncode == 0 and "--reference" in res.stdout
                    else "exit %d" % res.returncode))
    res = subprocess.run(base + ["--variant", "causal"] + out, capture_output=True, text=True)
    ok = res.returncode == 0 and np.load(p("o.npy")).dtype == np.float32 and \
        np.load(p("lse.npy")).shape == (1, 4, 8)
    results.append(("good run, f32 outputs", None if ok else "exit %d: %s" % (res.returncode, res.stderr)))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attnc", required=True, help="path to the attnc binary")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tmp = tempfile.mkdtemp(prefix="attnc_crosscheck.")
    failures = 0
    for case in cases():
        msg = run_case(args.attnc, case, tmp, rng)
        ok = msg.startswith("ok")
        failures += not ok
        print("%-4s %-28s %s" % ("PASS" if ok else "FAIL", case.name, msg), flush=True)
    for desc, problem in check_errors(args.attnc, tmp):
        failures += problem is not None
        print("%-4s %-28s %s" % ("PASS" if problem is None else "FAIL", "cli: " + desc, problem or "ok"))
    if args.keep:
        print("inputs kept in", tmp)
    else:
        subprocess.run(["rm", "-rf", tmp])
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
