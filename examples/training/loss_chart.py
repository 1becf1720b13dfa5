#!/usr/bin/env python3
"""Draws the loss curves of examples/training/train.py as one SVG (no plotting
library needed): loss per step for each attention backend of one run, the
backends' median time per training step in the legend.

  loss_chart.py RUN.json -o chart.svg     draw a run that train.py --json wrote
  loss_chart.py RUN.json --check [--against chart.svg]
      draw it in memory and check the picture against the JSON, and that
      chart.svg (the committed picture) is that drawing (ctest)

The figures are the JSON's, unchanged.
"""
import argparse
import json
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

STYLES = {"attnc": ("#2b6cb0", ""), "sdpa": ("#9b9b9b", "6,3"), "flex": ("#e0a03b", "2,2")}
LABELS = {"attnc": "attnc", "sdpa": "SDPA, explicit mask", "flex": "FlexAttention"}


def legend_text(name, run):
    return f"{LABELS.get(name, name)}: {run['ms_per_step']:.1f} ms/step, last-50 mean loss {run['final_loss']:.3f}"


def loss_chart(title, runs, width=900, height=460):
    """runs: backend -> {"loss": [per step], "ms_per_step", "final_loss"}; an SVG string."""
    left, right, top, bottom = 70, 20, 50, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    steps = max(len(r["loss"]) for r in runs.values())
    lmax = max(max(r["loss"]) for r in runs.values())
    lmin = min(min(r["loss"]) for r in runs.values())
    ymax, ymin = float(int(lmax) + 1), float(max(0, int(lmin)))
    x = lambda i: left + plot_w * i / max(1, steps - 1)
    y = lambda v: top + plot_h * (1 - (v - ymin) / (ymax - ymin))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>']
    ticks = 5
    for t in range(ticks + 1):
        v = ymin + (ymax - ymin) * t / ticks
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + plot_w}" y2="{y(v):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    for t in range(6):
        i = round((steps - 1) * t / 5)
        out.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{i + 1}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 18}" text-anchor="middle">training step</text>')
    out.append(f'<text x="18" y="{top + plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 18 {top + plot_h / 2})">masked-token loss (nats)</text>')
    for n, (name, run) in enumerate(runs.items()):
        color, dash = STYLES.get(name, ("#000000", ""))
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(run["loss"]))
        out.append(f'<polyline data-backend="{escape(name)}" fill="none" stroke="{color}" stroke-width="1.5"'
                   + (f' stroke-dasharray="{dash}"' if dash else "") + f' points="{points}"/>')
        # The legend in the plot's middle right, where a falling loss curve is not.
        lx, ly = left + plot_w * 0.45, top + plot_h * 0.3 + 18 * n
        out.append(f'<line x1="{lx:.1f}" y1="{ly - 4:.1f}" x2="{lx + 30:.1f}" y2="{ly - 4:.1f}" '
                   f'stroke="{color}" stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + '/>')
        out.append(f'<text x="{lx + 38:.1f}" y="{ly:.1f}">{escape(legend_text(name, run))}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#555"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def title_of(run):
    c = run["config"]
    return (f"{c['layers']}-layer ModernBERT-style encoder (global every 3rd layer, local +-64), "
            f"L={c['length']}, batch {c['batch']}, on {run['device']}")


def check(run, svg):
    """The picture shows the JSON: one polyline per backend with a point per
    step, inside the plot, steps left to right; the legend's figures."""
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    lines = {p.get("data-backend"): p for p in root.iter(ns + "polyline")}
    texts = [t.text for t in root.iter(ns + "text")]
    problems = []
    if set(lines) != set(run["runs"]):
        problems.append(f"polylines for {sorted(lines)}, backends {sorted(run['runs'])}")
    for name, r in run["runs"].items():
        if name not in lines:
            continue
        pts = [tuple(map(float, p.split(","))) for p in lines[name].get("points").split()]
        if len(pts) != len(r["loss"]):
            problems.append(f"{name}: {len(pts)} points for {len(r['loss'])} steps")
        if any(b[0] <= a[0] for a, b in zip(pts, pts[1:])):
            problems.append(f"{name}: steps not left to right")
        if any(not (0 <= px <= 900 and 0 <= py <= 460) for px, py in pts):
            problems.append(f"{name}: a point outside the picture")
        if legend_text(name, r) not in texts:
            problems.append(f"{name}: no legend '{legend_text(name, r)}'")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("-o", "--output")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--against")
    args = ap.parse_args()
    run = json.load(open(args.run))
    svg = loss_chart(title_of(run), run["runs"])
    if args.check:
        problems = check(run, svg)
        if args.against and open(args.against).read() != svg:
            problems.append(f"{args.against} is not the drawing of {args.run} (redraw it with -o)")
        for p in problems:
            print("FAIL " + p)
        print("loss_chart: ok" if not problems else f"loss_chart: {len(problems)} problems")
        return 1 if problems else 0
    if not args.output:
        ap.error("give -o chart.svg or --check")
    with open(args.output, "w") as f:
        f.write(svg)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
