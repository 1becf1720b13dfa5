#!/usr/bin/env python3
"""Trains a small ModernBERT-style encoder whose attention is attnc's kernels,
next to the same model on PyTorch's attention, from the same initial weights
on the same data.

The pattern is examples/modernbert.attn (every third layer global, the others
a local window of +-64 tokens), compiled once with backward=on; attnc.torch
gives the kernels autograd. The comparison backends run the same pattern:
"sdpa" is torch's scaled_dot_product_attention with an explicit boolean mask
on the local layers (what a model does without a kernel for its pattern),
"flex" FlexAttention with a block mask (compiled). The task needs the global
layers: each sequence is a random first half repeated, and 15% of the tokens
are masked, so a masked token is best recovered from its twin L/2 away.

Prints progress every 50 steps, then per backend the median time of a
training step (forward, backward, AdamW) and the final loss, and checks that
the backends agree: the first step's loss (same weights, same batch) within
1e-2, the mean loss of the last 50 steps within 5%. --json writes the losses
per step (examples/training/loss_chart.py draws them).

Usage: train.py [--steps 300] [--length 4096] [--batch 16] [--backends attnc,sdpa,flex]
                [--profile N] [--json RUN.json] [--svg chart.svg]
(--profile N: the GPU time of each backend's last N steps by kernel.)
Needs a CUDA GPU, torch and attnc (the wheel, or PYTHONPATH=python with
ATTNC_LIBRARY set).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import attnc
import attnc.torch as at

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 256  # token ids 0..255, MASK = 256


def rope_tables(length, dim, device):
    inv = 1.0 / (10000 ** (torch.arange(0, dim, 2, device=device).float() / dim))
    angles = torch.arange(length, device=device).float().view(-1, 1) * inv.view(1, -1)
    return angles.cos(), angles.sin()


def rope(x, cos, sin):
    """Rotary position embedding of [B, H, L, D] (halves rotated)."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class SdpaAttention(torch.nn.Module):
    """torch's scaled_dot_product_attention, with an explicit boolean mask (None: dense)."""

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask)


class FlexAttention(torch.nn.Module):
    """FlexAttention (compiled) with a block mask (None: dense)."""

    def __init__(self, flex, block_mask):
        super().__init__()
        self.flex, self.block_mask = flex, block_mask

    def forward(self, q, k, v):
        return self.flex(q, k, v, block_mask=self.block_mask)


class Block(torch.nn.Module):
    def __init__(self, dim, heads, attend):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim, bias=False)
        self.proj = torch.nn.Linear(dim, dim, bias=False)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim))
        self.attend = attend

    def forward(self, x, cos, sin):
        b, l, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, l, 3, self.heads, -1).unbind(2)
        q, k, v = rope(q.transpose(1, 2), cos, sin), rope(k.transpose(1, 2), cos, sin), v.transpose(1, 2)
        x = x + self.proj(self.attend(q, k, v).transpose(1, 2).reshape(b, l, -1))
        return x + self.mlp(self.norm2(x))


class Encoder(torch.nn.Module):
    def __init__(self, attends, dim, heads):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB + 1, dim)
        self.blocks = torch.nn.ModuleList(Block(dim, heads, a) for a in attends)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, VOCAB)

    def forward(self, tokens, cos, sin):
        x = self.embed(tokens)
        for blk in self.blocks:
            x = blk(x, cos, sin)
        return self.head(self.norm(x))


def batch(step, args):
    """The step's batch, the same for every backend: a random first half
    repeated, 15% of the tokens replaced by MASK."""
    gen = torch.Generator(device="cuda").manual_seed(1000 + step)
    half = torch.randint(0, VOCAB, (args.batch, args.length // 2), generator=gen, device="cuda")
    tokens = torch.cat([half, half], dim=1)
    masked = torch.rand(tokens.shape, generator=gen, device="cuda") < 0.15
    return torch.where(masked, torch.full_like(tokens, VOCAB), tokens), tokens, masked


def attention_layers(backend, module, args):
    """One attention module per layer, the pattern module.layer(i) says."""
    kinds = [module.layer(i).name for i in range(args.layers)]
    if backend == "attnc":
        return [at.Attention(module.layer(i)) for i in range(args.layers)]
    pos = torch.arange(args.length, device="cuda")
    if backend == "sdpa":
        local = (pos.view(-1, 1) - pos.view(1, -1)).abs() <= 64
        return [SdpaAttention(local if kind == "local" else None) for kind in kinds]
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    local = create_block_mask(lambda b, h, q, k: (q - k).abs() <= 64, None, None, args.length, args.length,
                              device="cuda")
    flex = torch.compile(flex_attention)
    return [FlexAttention(flex, local if kind == "local" else None) for kind in kinds]


def train(backend, module, args):
    torch.manual_seed(args.seed)  # the same initial weights for every backend
    model = Encoder(attention_layers(backend, module, args), args.dim, args.heads).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, args.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    cos, sin = rope_tables(args.length, args.dim // args.heads, "cuda")
    losses, times = [], []
    start = time.time()
    prof = None
    for step in range(args.steps):
        if args.profile and step == args.steps - args.profile:
            prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
            prof.__enter__()
        inputs, targets, masked = batch(step, args)
        t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0.record()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(inputs, cos, sin)
        loss = F.cross_entropy(logits[masked].float(), targets[masked])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        t1.record()
        t1.synchronize()
        losses.append(loss.item())
        times.append(t0.elapsed_time(t1))
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            print(f"  {backend:5s} step {step + 1:4d}/{args.steps}: loss {losses[-1]:.3f}, "
                  f"{statistics.median(times[-50:]):.1f} ms/step ({time.time() - start:.0f} s)", flush=True)
    if prof is not None:
        prof.__exit__(None, None, None)
        print(f"  {backend}: GPU time of the last {args.profile} steps by kernel")
        print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=15))
    steady = times[min(10, len(times) - 1):]  # past the first steps' compilation
    return {"loss": losses, "ms_per_step": statistics.median(steady), "final_loss": statistics.mean(losses[-50:])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", default="attnc,sdpa,flex")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="profile the last N steps of each backend (torch.profiler) and print its kernels")
    ap.add_argument("--json")
    ap.add_argument("--svg")
    args = ap.parse_args()
    if args.length % 2 or args.dim % args.heads:
        ap.error("--length must be even and --dim a multiple of --heads")
    head_dim = args.dim // args.heads
    t0 = time.time()
    module = attnc.compile(open(os.path.join(HERE, "..", "modernbert.attn")).read(),
                           options={"head_dims": str(head_dim), "dtypes": "bf16", "backward": "on"})
    print(f"attnc {attnc.version()}: compiled modernbert.attn with backward=on (head dim {head_dim}, bf16) "
          f"in {time.time() - t0:.1f} s; layers {[module.layer(i).name for i in range(args.layers)]}")
    print(f"{args.layers} layers, dim {args.dim}, {args.heads} heads, L={args.length}, batch {args.batch}, "
          f"{args.steps} steps on {torch.cuda.get_device_name()}")
    runs = {}
    for backend in args.backends.split(","):
        runs[backend] = train(backend, module, args)
    print(f"{'backend':8s} {'ms/step':>8s} {'vs attnc':>9s} {'first loss':>11s} {'last-50 loss':>13s}")
    base = runs.get("attnc")
    for name, r in runs.items():
        ratio = f"{r['ms_per_step'] / base['ms_per_step']:.2f}x" if base else "-"
        print(f"{name:8s} {r['ms_per_step']:8.1f} {ratio:>9s} {r['loss'][0]:11.4f} {r['final_loss']:13.3f}")
    failures = 0
    if base:
        for name, r in runs.items():
            if name == "attnc":
                continue
            first = abs(r["loss"][0] - base["loss"][0])
            last = abs(r["final_loss"] - base["final_loss"]) / r["final_loss"]
            ok = first <= 1e-2 and last <= 0.05
            failures += not ok
            print(("ok   " if ok else "FAIL ") + f"attnc vs {name}: first-step loss differs by {first:.1e} "
                  f"(<= 1e-2), last-50 mean by {100 * last:.1f}% (<= 5%)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": {k: getattr(args, k) for k in ("steps", "length", "batch", "layers", "dim",
                                                                 "heads", "lr", "seed")},
                       "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "attnc": attnc.version(), "runs": runs}, f)
        print(f"wrote {args.json}")
    if args.svg:
        sys.path.insert(0, HERE)
        from loss_chart import loss_chart, title_of
        with open(args.svg, "w") as f:
            f.write(loss_chart(title_of(json.load(open(args.json))) if args.json else "training loss", runs))
        print(f"wrote {args.svg}")
    print("train: all checks passed" if not failures else f"train: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
