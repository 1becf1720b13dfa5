#!/usr/bin/env python3
"""Draws one query's DSA selection as an SVG (no GPU, no plotting library):
the indexer score of every key the causal mask allows, the top K the
selection keeps, and the keys the mask excludes.

  plot_selection.py --attnc BUILD/bin/attnc -o docs/images/dsa-selection.svg

It checks the reference executor's choice against the top K of the indexer
scores it computes itself (exit 1 if they differ; ctest bench.plot_selection).

Runs `attnc run --reference` (float64) on a small DSA-like problem: 256
keys, 8 indexer heads of dim 16, top 24, query row 200. The indexer inputs
are random with a few keys made relevant to the query (a shared direction),
as a trained indexer would score them; the picture shows which keys are
kept, which are scored but dropped, and which the mask never lets the
indexer see.
"""
import argparse, array, ast, os, random, subprocess, sys, tempfile

SRC = """attention dsa_demo {
  mask k <= q;
  select topk(24) by indexer(heads = 8, dim = 16, dtype = bf16);
}
"""


def save_f32(path, shape, values):
    """A C-order float32 .npy file (no numpy needed)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join(f"{d}, " for d in shape)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
        array.array("f", values).tofile(f)


def load_i64(path):
    """(shape, values) of an int64 .npy file."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[8:10], "little")
    header = ast.literal_eval(data[10:10 + n].decode())
    assert header["descr"] == "<i8" and not header["fortran_order"], header
    values = array.array("q")
    values.frombytes(data[10 + n:])
    return header["shape"], values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attnc", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--row", type=int, default=200)
    args = ap.parse_args()
    L, HI, dI, K, row = 256, 8, 16, 24, args.row
    rng = random.Random(7)
    gauss = lambda: rng.gauss(0.0, 1.0)  # noqa: E731
    direction = [gauss() for _ in range(dI)]
    qI = [[[0.3 * gauss() + direction[d] for d in range(dI)] for _ in range(HI)] for _ in range(L)]
    kI = [[0.6 * gauss() for _ in range(dI)] for _ in range(L)]
    for c in rng.sample(range(L), 30):  # keys relevant to the queries
        kI[c] = [x + 1.5 * direction[d] for d, x in enumerate(kI[c])]
    w = [[abs(gauss()) / HI for _ in range(HI)] for _ in range(L)]
    q = [gauss() for _ in range(L * 16)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = {n: os.path.join(tmp, n + ".npy") for n in ("q", "qI", "w", "kI")}
        save_f32(paths["q"], (1, 1, L, 16), q)
        save_f32(paths["qI"], (1, L, HI, dI), [x for t in qI for j in t for x in j])
        save_f32(paths["w"], (1, L, HI), [x for t in w for x in t])
        save_f32(paths["kI"], (1, L, dI), [x for s in kI for x in s])
        src = os.path.join(tmp, "demo.attn")
        with open(src, "w") as f:
            f.write(SRC)
        idx_path = os.path.join(tmp, "idx.npy")
        subprocess.run([args.attnc, "run", "--reference", src, "--q", paths["q"], "--k", paths["q"], "--v",
                        paths["q"], "--indexer", ",".join(paths[n] for n in ("qI", "w", "kI")), "--out",
                        os.path.join(tmp, "o.npy"), "--indices", idx_path], check=True)
        shape, idx = load_i64(idx_path)
        chosen = set(c for c in idx[row * K:(row + 1) * K] if c >= 0)
    # The indexer score of every key of the row, as the reference defines it.
    score = [sum(w[row][j] * max(0.0, sum(a * b for a, b in zip(qI[row][j], kI[c]))) for j in range(HI))
             for c in range(L)]

    # The picture is only worth drawing if it is right: the reference's
    # choice must be the K best of these scores (computed here apart).
    best = set(sorted(range(row + 1), key=lambda c: (-score[c], c))[:K])
    if best != chosen:
        print(f"plot_selection: the reference chose {sorted(chosen ^ best)} other than the top {K} scores",
              file=sys.stderr)
        return 1

    width, height, left, top, plot_h = 980, 300, 50, 50, 170
    bar = (width - left - 20) / L
    smax = max(score[: row + 1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15">One query\'s DSA selection: row q = {row} of {L} keys, causal, '
           f'top {K} by the lightning indexer</text>']
    for c in range(L):
        x = left + c * bar
        if c > row:  # excluded by the mask: never scored
            out.append(f'<rect x="{x:.1f}" y="{top}" width="{bar:.2f}" height="{plot_h}" fill="#eeeeee"/>')
            continue
        h = plot_h * score[c] / smax if smax > 0 else 0
        color = "#c0392b" if c in chosen else "#9bb7d4"
        out.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar - 0.6, 0.5):.2f}" '
                   f'height="{h:.1f}" fill="{color}"/>')
    base = top + plot_h
    out.append(f'<line x1="{left}" y1="{base}" x2="{width - 20}" y2="{base}" stroke="#333"/>')
    for c in range(0, L + 1, 32):
        x = left + c * bar
        out.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">{c}</text>')
    out.append(f'<text x="{left + (width - left) / 2:.0f}" y="{base + 34}" text-anchor="middle">key position k'
               f'</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2:.0f}" transform="rotate(-90 16 {top + plot_h / 2:.0f})" '
               f'text-anchor="middle">indexer score I[q, k]</text>')
    legend = [("#c0392b", f"selected ({len(chosen)} keys: attention runs over these alone)"),
              ("#9bb7d4", "allowed, scored, not selected"), ("#eeeeee", "k > q: excluded by the mask, never scored")]
    for i, (color, text) in enumerate(legend):
        x = left + i * 300
        out.append(f'<rect x="{x}" y="{height - 28}" width="14" height="14" fill="{color}" stroke="#999"/>')
        out.append(f'<text x="{x + 20}" y="{height - 16}">{text}</text>')
    out.append("</svg>")
    with open(args.output, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.output}: {len(chosen)} of {row + 1} allowed keys selected")


if __name__ == "__main__":
    sys.exit(main())
