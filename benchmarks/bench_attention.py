"""Benchmark causal multi-head self-attention: simple_llm against PyTorch's own modules.

Candidates (all eval mode, dropout 0, float32):

- ``ours``: ``MultiHeadAttention.forward`` (fused Q/K/V, ``F.scaled_dot_product_attention``).
- ``ours_explicit``: ``MultiHeadAttention.forward(x, return_weights=True)``, the explicit path
  (all heads batched, softmax written out, (B, H, T, T) weights materialised).
- ``nn_mha``: ``torch.nn.MultiheadAttention(batch_first=True)`` with a causal bool
  ``attn_mask``, ``is_causal=True``, ``need_weights=False``.
- ``sdpa``: a hand-written fused module (one Linear to 3C, split into heads,
  ``F.scaled_dot_product_attention(is_causal=True)``, merge, output Linear): the practical limit.
- ``seed_loop``: the seed's pattern, a Python loop over heads each with its own q/k/v Linear.

Timing: one process, candidates interleaved round-robin on every repeat; times (``*_ms``) are
medians over repeats. Ratios in the table (``ratios``) divide the fastest repeats
(``*_min_ms``); ``ratios_paired_median`` in the JSON holds the medians over repeats of the
ratio measured within one round. Forward under ``torch.no_grad()``; forward+backward computes
the gradients of the parameters.
A second table sweeps T at one (B, C, H) and gives peak memory only, next to the size of one
head's (B, T, T) scores and of the fused (B, T, 3C) projection: the two sizes that explain why
the seed loop's peak is lower at short T and higher at long T.
Peak memory: CPU tensors are traced with ``torch.profiler.profile(profile_memory=True)``; the
allocation events (+bytes on alloc, -bytes on free) are replayed in time order and the peak of
the running sum is reported (tensor memory allocated during the call and alive at once,
outputs included). On CUDA: ``torch.cuda.max_memory_allocated`` above the memory before the call.

Other processes on a small CPU machine distort the timings badly (with torch's default thread
count, a busy core stalls every parallel region); hence the ratios of the fastest
repeats in the table. Run it on a quiet machine, e.g. ``nice -n -10 python ...``.

Usage: ``python benchmarks/bench_attention.py [--quick] [--out DIR] [--device cpu|cuda]``.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from _machine import cpu_model
from torch.profiler import ProfilerActivity, profile

from simple_llm import MultiHeadAttention

SHAPES = [(1, 64, 64, 4), (8, 128, 256, 8), (4, 512, 512, 8), (1, 1024, 768, 12), (2, 2048, 512, 8)]
QUICK_SHAPES = [(1, 8, 16, 2), (2, 16, 32, 4)]
# Peak memory against T at one (B, C, H): linear for the fused paths, quadratic where (T, T) is stored.
MEMORY_SWEEP = {"B": 1, "C": 512, "H": 8, "T": [256, 512, 1024, 2048]}
QUICK_MEMORY_SWEEP = {"B": 1, "C": 16, "H": 2, "T": [8, 16]}
CANDIDATES = ["ours", "ours_explicit", "nn_mha", "sdpa", "seed_loop"]


class FusedSDPA(nn.Module):
    """Hand-written fused causal attention: the practical limit for a PyTorch module."""

    def __init__(self, emb_size, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.c_attn = nn.Linear(emb_size, 3 * emb_size)
        self.c_proj = nn.Linear(emb_size, emb_size)

    def forward(self, x):
        B, T, C = x.shape
        H = self.num_heads
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q = q.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, hs)
        k = k.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, hs)
        v = v.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.c_proj(y)


class SeedHead(nn.Module):
    """One head as the seed wrote it: own q/k/v Linear, tril mask, softmax."""

    def __init__(self, emb_size, head_size, max_seq_len):
        super().__init__()
        self.q = nn.Linear(emb_size, head_size)
        self.k = nn.Linear(emb_size, head_size)
        self.v = nn.Linear(emb_size, head_size)
        self.register_buffer("tril", torch.tril(torch.ones(max_seq_len, max_seq_len)))

    def forward(self, x):
        T = x.size(1)
        q, k, v = self.q(x), self.k(x), self.v(x)  # (B, T, hs) each
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, T, T)
        scores = scores.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        return scores.softmax(dim=-1) @ v  # (B, T, hs)


class SeedLoopMHA(nn.Module):
    """The seed's multi-head attention: a Python loop over heads, concatenation, Linear."""

    def __init__(self, num_heads, emb_size, head_size, max_seq_len):
        super().__init__()
        self.heads = nn.ModuleList(SeedHead(emb_size, head_size, max_seq_len) for _ in range(num_heads))
        self.proj = nn.Linear(num_heads * head_size, emb_size)

    def forward(self, x):
        return self.proj(torch.cat([head(x) for head in self.heads], dim=-1))  # (B, T, C)


def build(shape, device):
    """Candidate callables (x -> output) for one shape."""
    B, T, C, H = shape
    ours = MultiHeadAttention(H, C, C // H, T, dropout=0.0)
    nn_mha = nn.MultiheadAttention(C, H, batch_first=True)
    causal = torch.ones(T, T, dtype=torch.bool, device=device).triu(1)  # (T, T), True = masked out
    sdpa = FusedSDPA(C, H)
    seed = SeedLoopMHA(H, C, C // H, T)
    modules = {"ours": ours, "nn_mha": nn_mha, "sdpa": sdpa, "seed_loop": seed}
    for module in modules.values():
        module.to(device).eval()
    calls = {
        "ours": ours,
        "ours_explicit": lambda x: ours(x, return_weights=True)[0],
        "nn_mha": lambda x: nn_mha(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)[0],
        "sdpa": sdpa,
        "seed_loop": seed,
    }
    params = {name: list(modules.get(name, ours).parameters()) for name in CANDIDATES}
    return calls, params


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def step(call, params, x, backward):
    """One forward (no grad) or forward+backward."""
    if not backward:
        with torch.no_grad():
            call(x)
        return
    for p in params:
        p.grad = None
    call(x).sum().backward()


def peak_mib(call, params, x, backward, device):
    """Peak tensor memory allocated during one step, in MiB."""
    if device == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step(call, params, x, backward)
        sync(device)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(call, params, x, backward)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak / 2**20


def time_shape(calls, params, x, backward, max_repeats, budget_s, sample_ms, device):
    """Per-round ms per call for each candidate, interleaved round-robin.

    Each sample averages ``inner`` calls (``sample_ms`` of the SDPA module); the number of
    repeats fits ``budget_s`` seconds, between 3 and ``max_repeats``.
    """

    def sample(name, inner):
        sync(device)
        start = time.perf_counter()
        for _ in range(inner):
            step(calls[name], params[name], x, backward)
        sync(device)
        return (time.perf_counter() - start) / inner * 1e3

    for name in CANDIDATES:  # warm-up
        step(calls[name], params[name], x, backward)
    inner = max(1, int(sample_ms / max(sample("sdpa", 1), 1e-3)))
    samples = {name: [sample(name, inner)] for name in CANDIDATES}
    round_s = sum(s[0] for s in samples.values()) * inner / 1e3
    repeats = max(3, min(max_repeats, int(budget_s / round_s)))
    for _ in range(repeats - 1):
        for name in CANDIDATES:
            samples[name].append(sample(name, inner))
    return samples


def best_ratio(samples, a, b):
    """``a / b`` of the fastest repeats: other processes only ever add time."""
    return min(samples[a]) / min(samples[b])


def ratios(fwd, fwd_bwd, ratio):
    """The reported speed ratios, each computed with ``ratio(samples, a, b)``."""
    return {
        "fwd_ours_over_sdpa": ratio(fwd, "ours", "sdpa"),
        "fwd_bwd_ours_over_sdpa": ratio(fwd_bwd, "ours", "sdpa"),
        "fwd_ours_over_nn_mha": ratio(fwd, "ours", "nn_mha"),
        "fwd_bwd_ours_over_nn_mha": ratio(fwd_bwd, "ours", "nn_mha"),
        "fwd_sdpa_over_nn_mha": ratio(fwd, "sdpa", "nn_mha"),
        "fwd_explicit_over_sdpa": ratio(fwd, "ours_explicit", "sdpa"),
        "fwd_seed_loop_over_sdpa": ratio(fwd, "seed_loop", "sdpa"),
    }


def paired_ratio(samples, a, b):
    """Median over rounds of ``a / b`` measured in the same round (robust to load drift)."""
    return statistics.median(x / y for x, y in zip(samples[a], samples[b]))


def memory_sweep(sweep, device):
    """Peak forward memory of every candidate at each T, with the two sizes that explain it."""
    B, C, H = sweep["B"], sweep["C"], sweep["H"]
    rows = []
    for T in sweep["T"]:
        calls, params = build((B, T, C, H), device)
        x = torch.randn(B, T, C, device=device)
        peaks = {name: peak_mib(calls[name], params[name], x, False, device) for name in CANDIDATES}
        rows.append(
            {
                "T": T,
                "fwd_peak_mib": peaks,
                "one_head_scores_mib": B * T * T * 4 / 2**20,  # one float32 (B, T, T) tensor
                "fused_qkv_mib": B * T * 3 * C * 4 / 2**20,  # the float32 (B, T, 3C) projection
            }
        )
        print(f"memory T={T}: " + ", ".join(f"{k}={v:.2f}" for k, v in peaks.items()), flush=True)
    return rows


def run(shapes, max_repeats, budget_s, sample_ms, device):
    results = []
    for shape in shapes:
        B, T, C, H = shape
        calls, params = build(shape, device)
        x = torch.randn(B, T, C, device=device)
        fwd = time_shape(calls, params, x, False, max_repeats, budget_s, sample_ms, device)
        fwd_bwd = time_shape(calls, params, x, True, max_repeats, budget_s, sample_ms, device)
        mem = {name: peak_mib(calls[name], params[name], x, False, device) for name in CANDIDATES}
        mem_bwd = {name: peak_mib(calls[name], params[name], x, True, device) for name in CANDIDATES}
        row = {
            "shape": {"B": B, "T": T, "C": C, "H": H},
            "repeats": {"fwd": len(fwd["sdpa"]), "fwd_bwd": len(fwd_bwd["sdpa"])},
            "candidates": {
                name: {
                    "fwd_ms": statistics.median(fwd[name]),
                    "fwd_bwd_ms": statistics.median(fwd_bwd[name]),
                    "fwd_min_ms": min(fwd[name]),
                    "fwd_bwd_min_ms": min(fwd_bwd[name]),
                    "fwd_peak_mib": mem[name],
                    "fwd_bwd_peak_mib": mem_bwd[name],
                }
                for name in CANDIDATES
            },
            "ratios": ratios(fwd, fwd_bwd, best_ratio),
            "ratios_paired_median": ratios(fwd, fwd_bwd, paired_ratio),
        }
        results.append(row)
        print(f"{shape}: " + ", ".join(f"{k}={v:.3f}" for k, v in row["ratios"].items()), flush=True)
    return results


def memory_markdown(sweep, rows):
    """The memory sweep as a table, and what explains it."""
    names = ("ours", "sdpa", "nn_mha", "ours_explicit", "seed_loop")
    header = (
        f"| T (B = {sweep['B']}, C = {sweep['C']}, H = {sweep['H']}) | MiB ours | MiB SDPA | MiB nn.MHA "
        "| MiB expl. | MiB seed loop | one head's (B, T, T), MiB | fused (B, T, 3C), MiB |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        cells = [str(row["T"])] + [f"{row['fwd_peak_mib'][name]:.2f}" for name in names]
        cells += [f"{row['one_head_scores_mib']:.2f}", f"{row['fused_qkv_mib']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "MiB is the peak of the tensor memory allocated during one forward, its output included. The seed "
        "loop computes one head at a time and frees it before the next, so its peak is about two (B, T, T) "
        "tensors of one head (the scores and their softmax) plus the outputs; ours and the SDPA module "
        "compute Q, K, V of all heads at once in one (B, T, 3C) tensor and never store (T, T). At short T "
        "the fused (B, T, 3C) tensor is the larger one and the loop's peak is lower; as T grows the loop's "
        "peak grows as T², ours as T."
    )
    return "\n".join(lines) + "\n"


def markdown(results, machine):
    header = (
        "| (B, T, C, H) | fwd ms ours | fwd ours/SDPA | fwd+bwd ours/SDPA | fwd ours/nn.MHA "
        "| fwd+bwd ours/nn.MHA | fwd SDPA/nn.MHA | fwd expl./SDPA | seed loop/SDPA "
        "| MiB ours | MiB SDPA | MiB nn.MHA | MiB expl. | MiB seed loop |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in results:
        s, c, r = row["shape"], row["candidates"], row["ratios"]
        cells = [
            f"({s['B']}, {s['T']}, {s['C']}, {s['H']})",
            f"{c['ours']['fwd_ms']:.3f}",
            f"{r['fwd_ours_over_sdpa']:.2f}",
            f"{r['fwd_bwd_ours_over_sdpa']:.2f}",
            f"{r['fwd_ours_over_nn_mha']:.2f}",
            f"{r['fwd_bwd_ours_over_nn_mha']:.2f}",
            f"{r['fwd_sdpa_over_nn_mha']:.2f}",
            f"{r['fwd_explicit_over_sdpa']:.2f}",
            f"{r['fwd_seed_loop_over_sdpa']:.2f}",
        ] + [
            f"{c[name]['fwd_peak_mib']:.2f}"
            for name in ("ours", "sdpa", "nn_mha", "ours_explicit", "seed_loop")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"torch {machine['torch']}, {machine['device_name']}, {machine['threads']} threads, "
        f"float32, 3 to {machine['repeats']} interleaved repeats; ms: median forward time; ratios: fastest "
        "repeat over fastest repeat, > 1 when the first is slower; MiB: peak tensor memory of one forward."
    )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few repeats (smoke test)")
    parser.add_argument("--out", default="docs/assets/benchmark/", help="output directory")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--repeats", type=int, default=None, help="most repeats per shape (default: 3 quick, 25 full)"
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    torch.manual_seed(0)
    repeats = args.repeats or (3 if args.quick else 25)
    budget_s, sample_ms = (0.2, 1.0) if args.quick else (12.0, 20.0)  # full 2-core CPU run: ~4 minutes
    results = run(QUICK_SHAPES if args.quick else SHAPES, repeats, budget_s, sample_ms, args.device)
    sweep = QUICK_MEMORY_SWEEP if args.quick else MEMORY_SWEEP
    memory = memory_sweep(sweep, args.device)
    machine = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else cpu_model(),
        "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "repeats": repeats,
        "quick": args.quick,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"results-{args.device}.json"), "w") as f:
        json.dump({"machine": machine, "results": results, "memory_sweep": memory}, f, indent=2)
    text = markdown(results, machine) + "\n" + memory_markdown(sweep, memory)
    with open(os.path.join(args.out, f"results-{args.device}.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
