#!/usr/bin/env python3
"""bench/plot_bench.py on the committed results: well-formed SVG whose bars
carry the JSON's figures (one bar per case and series that has a value).
Usage: plot_check.py REPO_ROOT"""
import json, os, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

root = sys.argv[1]
script = os.path.join(root, "bench", "plot_bench.py")
results = os.path.join(root, "bench", "results-bench-v6.json")
rows = json.load(open(results))
ns = "{http://www.w3.org/2000/svg}"
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "run.svg")
    subprocess.run([sys.executable, script, "run", results, "-o", out], check=True)
    titles = [t.text for t in ET.parse(out).getroot().iter(ns + "title")]
    want = []
    for r in rows:
        want.append("attnc: %.1f TFLOP/s" % r["ours_tflops"])
        want.append("FlexAttention: %.1f TFLOP/s" % r["flex_tflops"])
        if "cudnn_tflops" in r:
            want.append("cuDNN SDPA: %.1f TFLOP/s" % r["cudnn_tflops"])
    assert sorted(titles) == sorted(want), (titles, want)
    hist = os.path.join(d, "history.svg")
    subprocess.run([sys.executable, script, "history", "a=" + results, "b=" + results, "-o", hist], check=True)
    bars = [t.text for t in ET.parse(hist).getroot().iter(ns + "title")]
    assert len(bars) == 2 * len(rows), bars
    bad = subprocess.run([sys.executable, script, "run", results, results, "-o", hist], capture_output=True)
    assert bad.returncode != 0
    # --ours: v7's default build (wgmma) from its alternative timings, documents kept.
    v7 = os.path.join(root, "bench", "results-bench-v7.json")
    rows7 = json.load(open(v7))
    out7 = os.path.join(d, "v7.svg")
    subprocess.run([sys.executable, script, "run", v7, "--ours", "wgmma", "--keep", "documents", "-o", out7], check=True)
    titles7 = [t.text for t in ET.parse(out7).getroot().iter(ns + "title")]
    for r in rows7:
        tf = r["ours_tflops"] if r["case"] == "documents" else r["ours_tflops"] * r["ours_ms"] / r["alt_ms"]["wgmma"]
        assert "attnc: %.1f TFLOP/s" % tf in titles7, (r["case"], tf, titles7)
    bad = subprocess.run([sys.executable, script, "run", v7, "--ours", "nosuch", "-o", out7], capture_output=True)
    assert bad.returncode != 0
    # --device names the GPU in the title (H200 by default).
    subprocess.run([sys.executable, script, "run", results, "--device", "H100", "-o", out], check=True)
    title = "".join(ET.parse(out).getroot().find(ns + "text").itertext())
    assert "(H100, bf16" in title, title
print("plot_bench.py: %d bars checked" % (len(want) + len(bars)))
