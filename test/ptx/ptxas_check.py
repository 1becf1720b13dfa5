#!/usr/bin/env python3
"""Every example's PTX assembles with ptxas, for sm_80 and sm_90a (and sm_90a
with the mma-sync backend as well as its default wgmma, with the persistent
grid, and with the gradient kernels), and the kernels for head dims 64 and 128
spill nothing (ptxas -v).

Usage: ptxas_check.py ATTNC PTXAS EXAMPLES_DIR
         [--targets=sm_80,sm_90a,sm_90a+mma-sync,sm_90a+persistent,sm_90a+backward] [--table]
A target TARGET+BACKEND compiles with --backend=BACKEND; TARGET+persistent
with --persistent=on; TARGET+backward with --backward=on at head dims 64 and
128, whose gradient kernels (_bwd_) may spill up to 160 bytes (measured on the
wgmma dK/dV kernels at head dim 128: 136 with ALiBi's score rule, 32-48 with
Gemma 2's softcap, 12 for packed documents, none for the others; the
mma.sync ones spilled 120-136: bench/NOTES.md, Backward v3). A wgmma chain that
ptxas serializes (warning C7515: something touched its accumulators between
issue and wait) fails the check too.
Compiles each example with attnc for each target, runs `ptxas -arch=TARGET
-v`, and parses its report per kernel: registers, spill stores and loads.
Fails on an assembler error, or on any spill in a kernel of head dim 64 or
128 (head dim 256 is reported only), but for DSA's attention stage at head
dim 128 (128 query heads a CTA), which may spill up to 16 bytes: measured
at 300 TF/s on selected pairs with that spill, against 200 at 64 heads a CTA
without (bench/NOTES.md, DSA), and for sm_90a's default kernels, whose key
loop overlaps the softmax with the GEMMs (two tiles' accumulators and P live
at once; also those that --persistent=on leaves one CTA a tile), which may
spill up to 16 bytes: at 232 registers StreamingLLM's d = 128 kernel spills
12 (its two key intervals' row bounds), packed documents' 4, every other
example none.
Also prints the compile time per example (attnc, all kernels of the file).
"""
import os, re, subprocess, sys, tempfile, time


def main():
    attnc, ptxas, examples = sys.argv[1:4]
    targets = ["sm_80", "sm_90a", "sm_90a+mma-sync", "sm_90a+persistent", "sm_90a+backward"]
    for a in sys.argv[4:]:
        if a.startswith("--targets="):
            targets = a.split("=", 1)[1].split(",")
    failures = []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(os.listdir(examples)):
            if not name.endswith(".attn"):
                continue
            for target in targets:
                arch, _, backend = target.partition("+")
                ptx = os.path.join(tmp, f"{name}.{arch}.{backend or 'default'}.ptx")
                flags = {"persistent": ["--persistent=on"], "backward": ["--backward=on", "--head-dims=64,128"],
                         "": []}.get(backend, [f"--backend={backend}"])
                t0 = time.monotonic()
                r = subprocess.run([attnc, os.path.join(examples, name), f"--target={arch}", *flags, "-o", ptx],
                                   capture_output=True, text=True)
                secs = time.monotonic() - t0
                if r.returncode != 0:
                    failures.append(f"{name} {target}: attnc failed: {r.stderr.strip()[:400]}")
                    continue
                r = subprocess.run([ptxas, f"-arch={arch}", "-v", ptx, "-o", os.devnull],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"{name} {target}: ptxas failed: {r.stderr.strip()[:400]}")
                    continue
                if "C7515" in r.stderr or "serialized" in r.stderr:
                    failures.append(f"{name} {target}: ptxas serialized a wgmma chain: {r.stderr.strip()[:400]}")
                kernel = None
                spills = {}
                for line in r.stderr.splitlines():
                    m = re.search(r"Compiling entry function '(\w+)'", line)
                    if m:
                        kernel = m.group(1)
                    m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
                    if m and kernel:
                        spills[kernel] = (int(m.group(1)), int(m.group(2)))
                    m = re.search(r"Used (\d+) registers", line)
                    if m and kernel:
                        st, ld = spills.get(kernel, (0, 0))
                        rows.append((name, target, kernel, int(m.group(1)), st, ld))
                        d = int(re.search(r"_d(\d+)_", kernel).group(1))
                        allowed = 16 if name == "dsa.attn" and d == 128 and not kernel.endswith(("_select", "_topk")) else 0
                        if "_bwd_" in kernel:
                            allowed = 160
                        elif arch == "sm_90a" and backend != "mma-sync":  # the overlapped key loop (StreamingLLM: 12)
                            allowed = max(allowed, 16)
                        if d in (64, 128) and max(st, ld) > allowed:
                            failures.append(f"{name} {target}: {kernel} spills ({st} bytes stored, {ld} loaded)")
                print(f"{name:20s} {target:7s} compiled in {secs * 1000:6.0f} ms, "
                      f"{sum(1 for x in rows if x[0] == name and x[1] == target)} kernels assembled")
    if "--table" in sys.argv:
        for row in rows:
            print("  %-18s %-7s %-28s %3d registers, spills %d/%d" % row)
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
