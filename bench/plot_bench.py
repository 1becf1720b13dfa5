#!/usr/bin/env python3
"""Draws bench_attnc.py results as SVG bar charts (no plotting library needed).

  plot_bench.py run RESULTS.json [--ours LABEL [--keep CASE,...]] [--device GPU] -o chart.svg
      one run: effective TFLOP/s per case, ours next to cuDNN SDPA and
      FlexAttention from the same run, with ours / FlexAttention on top;
      --ours takes our figures from the run's --alt build LABEL instead
      (except the --keep cases): the default build when the run timed it
      as an alternative (v7: wgmma, with documents on the mma.sync kernel);
  plot_bench.py history LABEL=RESULTS.json ... -o chart.svg
      our effective TFLOP/s per case across versions.

The figures are the JSON's, unchanged (bench/NOTES.md says which command
produced each file).
"""
import argparse
import json
import sys
from xml.sax.saxutils import escape

COLORS = {"attnc": "#2b6cb0", "cuDNN SDPA": "#9b9b9b", "FlexAttention": "#e0a03b"}
NAMES = {"dense": "dense 16K", "causal": "causal 16K", "sliding1024": "sliding 1024, 128K",
         "sliding4096": "sliding 4096, 128K", "modernbert_local": "ModernBERT local, 128K",
         "documents": "documents, 128K", "dense_d64": "dense d64 16K", "dense_d256": "dense d256 16K",
         "causal_gqa32_8": "causal GQA 32:8", "dense_b4_4096": "dense B=4 4K", "causal_b2_5000": "causal B=2 5000"}
HISTORY_COLORS = ["#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b"]


def svg_chart(title, cases, series, values, colors, notes=None, width=900, height=420):
    """Grouped bars: values[case][series] (None: no bar); notes[case]: text above the group."""
    left, right, top, bottom = 60, 20, 60, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = max(v for c in cases for v in values[c].values() if v is not None)
    step = 100 if vmax > 300 else 50
    ymax = step * (int(vmax / step) + 1)
    y = lambda v: top + plot_h * (1 - v / ymax)
    group_w = plot_w / len(cases)
    bar_w = group_w * 0.8 / len(series)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for t in range(0, ymax + 1, step):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t}</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {top + plot_h / 2})">effective TFLOP/s</text>')
    for i, c in enumerate(cases):
        x0 = left + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            v = values[c].get(s)
            if v is None:
                continue
            x = x0 + j * bar_w
            out.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w - 2:.1f}" height="{top + plot_h - y(v):.1f}" '
                       f'fill="{colors[s]}"><title>{escape(s)}: {v:.1f} TFLOP/s</title></rect>')
            out.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{y(v) - 3:.1f}" text-anchor="middle" '
                       f'font-size="9">{v:.0f}</text>')
        cx = left + (i + 0.5) * group_w
        out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{escape(NAMES.get(c, c))}</text>')
        if notes and notes.get(c):
            out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 34}" text-anchor="middle" font-size="11" '
                       f'fill="#444">{escape(notes[c])}</text>')
    lx = left
    for s in series:
        out.append(f'<rect x="{lx}" y="{height - 22}" width="12" height="12" fill="{colors[s]}"/>')
        out.append(f'<text x="{lx + 16}" y="{height - 12}">{escape(s)}</text>')
        lx += 30 + 7 * len(s)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def with_ours(rows, label, keep):
    """rows with ours_* taken from the alternative build `label` (same run),
    except the cases in `keep`."""
    out = []
    for r in rows:
        r = dict(r)
        if label and r["case"] not in keep:
            if label not in r.get("alt_ms", {}):
                sys.exit("case %s has no --alt build '%s'" % (r["case"], label))
            ms = r["alt_ms"][label]
            r["ours_tflops"] *= r["ours_ms"] / ms
            r["ours_ms"] = ms
            r["vs_flex"] = r["flex_ms"] / ms
            if "cudnn_ms" in r:
                r["vs_cudnn"] = r["cudnn_ms"] / ms
        out.append(r)
    return out


def run_chart(path, ours=None, keep=(), device="H200"):
    rows = with_ours(json.load(open(path)), ours, set(keep))
    cases = [r["case"] for r in rows]
    values = {r["case"]: {"attnc": r["ours_tflops"], "cuDNN SDPA": r.get("cudnn_tflops"),
                          "FlexAttention": r["flex_tflops"]} for r in rows}
    notes = {r["case"]: "attnc %.2fx flex" % r["vs_flex"] for r in rows}
    return svg_chart("attnc vs cuDNN SDPA and FlexAttention (%s, bf16; one run)" % device,
                     cases, list(COLORS), values, COLORS, notes)


def history_chart(labelled, device="H200"):
    runs = []
    for item in labelled:
        label, path = item.split("=", 1)
        runs.append((label, {r["case"]: r["ours_tflops"] for r in json.load(open(path))}))
    cases = []
    for _, r in runs:
        cases += [c for c in r if c not in cases]
    series = [label for label, _ in runs]
    colors = {label: HISTORY_COLORS[i % len(HISTORY_COLORS)] for i, label in enumerate(series)}
    values = {c: {label: r.get(c) for label, r in runs} for c in cases}
    return svg_chart("attnc's effective TFLOP/s by version (%s, bf16, d=128)" % device, cases, series, values,
                     colors)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["run", "history"])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--ours", help="run: our figures from this --alt build of the run")
    ap.add_argument("--keep", default="", help="run: with --ours, cases that keep the run's own figures")
    ap.add_argument("--device", default="H200",
                    help="the GPU the results come from, for the title (default H200: every run before v14)")
    args = ap.parse_args()
    if args.kind == "run" and len(args.inputs) != 1:
        sys.exit("plot_bench.py run takes one results file")
    keep = [c for c in args.keep.split(",") if c]
    svg = (run_chart(args.inputs[0], args.ours, keep, args.device) if args.kind == "run"
           else history_chart(args.inputs, args.device))
    with open(args.output, "w") as f:
        f.write(svg)


if __name__ == "__main__":
    main()
