"""What the GPU checks share: the float64 reference executor through its
command line (`attnc run --reference`), and the comparison of a kernel's O
and LSE with it (check_kernels.py, check_generated.py).

Tolerances: relative L2 error of O <= 1e-2 (bf16) / 2e-3 (fp16), relative to
the reference's norm but at least 1e-3 per element (rows whose weight a sink
takes almost entirely have an O far below any rounding of the kernel's), LSE
within 1e-3 relative where finite, -inf exactly where the reference has it,
NaN exactly in the rows where the reference has it (a NaN or +inf score,
language.md 5.4) and nowhere else.
"""
import math, os, subprocess

import numpy as np
import torch

TOL = {"bf16": 1e-2, "fp16": 2e-3}
TORCH_DT = {"bf16": torch.bfloat16, "fp16": torch.float16}


def save_npy(path, t):
    """bf16 as raw int16 bits (docs/reference.md), other types as they are."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        np.save(path, t.view(torch.int16).numpy())
    else:
        np.save(path, t.numpy())


def run_reference(attnc_bin, src, variant, q, k, v, tmp, *, q_off, k_off, inputs=None, sinks=None,
                  defines=(), threads=None, extra=()):
    """O and LSE of `attnc run --reference` in float64 (torch, CPU), or
    (None, message) when the executor refuses. Returns also the command.
    `extra`: more arguments (--indexer, --indices, --selection)."""
    paths = {}
    for name, t in (("q", q), ("k", k), ("v", v)):
        paths[name] = os.path.join(tmp, name + ".npy")
        save_npy(paths[name], t)
    cmd = [attnc_bin, "run", "--reference", src, "--variant", variant, "--q", paths["q"], "--k", paths["k"],
           "--v", paths["v"], "--out", os.path.join(tmp, "o.npy"), "--lse", os.path.join(tmp, "lse.npy"),
           "--dtype-out", "f64", "--q-offset", str(q_off), "--k-offset", str(k_off)]
    for d in defines:
        cmd += ["-D", d]
    if threads:
        cmd += ["--threads", str(threads)]
    for n, t in (inputs or {}).items():
        p = os.path.join(tmp, "in_" + n + ".npy")
        save_npy(p, t)
        cmd += ["--input", f"{n}={p}"]
    if sinks is not None:
        p = os.path.join(tmp, "sinks.npy")
        save_npy(p, sinks)
        cmd += ["--sinks", p]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        errors = [l for l in r.stderr.splitlines() if "error" in l] or r.stderr.strip().splitlines()[-1:]
        return None, "reference failed (exit %d): %s" % (r.returncode, " / ".join(errors)[:300]), cmd
    ro = torch.from_numpy(np.load(os.path.join(tmp, "o.npy")))
    rl = torch.from_numpy(np.load(os.path.join(tmp, "lse.npy")))
    return ro, rl, cmd


def compare(out, lse, ro, rl, dt):
    """(ok, message) for a kernel's O and LSE against the reference's."""
    o64 = out.double().cpu()
    l64 = lse.double().cpu()
    problems = []
    ref_nan = torch.isnan(rl)
    if not torch.equal(ref_nan, torch.isnan(l64)):
        problems.append(f"LSE NaN at {int(torch.isnan(l64).sum())} rows, the reference at {int(ref_nan.sum())}")
    o_nan_rows = torch.isnan(o64).any(dim=-1)
    if not torch.equal(o_nan_rows, ref_nan):
        problems.append(f"NaN in O at {int(o_nan_rows.sum())} rows, the reference at {int(ref_nan.sum())}")
    keep = (~ref_nan & ~o_nan_rows).unsqueeze(-1).expand_as(o64)
    ro_k, o_k = ro[keep], o64[keep]
    denom = max(ro_k.norm().item(), 1e-3 * math.sqrt(max(1, ro_k.numel())))
    err = (o_k - ro_k).norm().item() / denom
    if not err <= TOL[dt]:
        problems.append(f"O rel L2 {err:.2e} > {TOL[dt]:.0e}")
    ref_inf = torch.isinf(rl)
    if not torch.equal(ref_inf, torch.isinf(l64)):
        problems.append(f"LSE -inf mismatch at {int((ref_inf != torch.isinf(l64)).sum())} rows")
    fin = ~ref_inf & ~torch.isinf(l64) & ~torch.isnan(l64) & ~ref_nan
    lse_err = ((l64[fin] - rl[fin]).abs() / rl[fin].abs().clamp(min=1.0)).max().item() if fin.any() else 0.0
    if not lse_err <= 1e-3:
        problems.append(f"LSE rel err {lse_err:.2e}")
    empty = int(ref_inf.sum())
    nan_rows = f", {int(ref_nan.sum())} NaN rows" if ref_nan.any() else ""
    return not problems, f"O err {err:.2e}, LSE err {lse_err:.1e}, {empty} empty rows{nan_rows}" + (
        "  <- " + "; ".join(problems) if problems else "")
