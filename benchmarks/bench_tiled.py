"""Benchmark tiled_attention: peak memory and time against the explicit softmax(QKᵀ)V and SDPA.

Candidates (causal self-attention, one sequence, one head of size 64, float32, no grad):

- ``explicit``: ``softmax(QKᵀ / √hs)V`` written out, as the package's explicit path computes it:
  the ``(T, T)`` scores, the masked scores and the weights are materialised.
- ``tiled_64`` and ``tiled_256``: ``simple_llm.tiled_attention(..., block_size=64 / 256)``, the
  online softmax in plain PyTorch, one ``(block, block)`` tile of scores at a time.
- ``sdpa``: ``F.scaled_dot_product_attention(is_causal=True)``; on the CPU PyTorch runs its
  flash-attention kernel (C++, blocks of queries and keys, one buffer per thread).

Peak memory, and why it is measured this way: PyTorch's tensors live in memory that c10's CPU
allocator takes with ``malloc``/``posix_memalign`` directly, so ``tracemalloc`` (which sees only
Python's own allocator) sees none of it, and the process's resident size (``ru_maxrss``) is a
high-water mark that cannot be reset between measurements and also counts the allocator's
caches and the libraries. ``torch.profiler.profile(profile_memory=True)`` records every
allocation and free of that allocator with its size and time; replaying them in time order
(+bytes on allocation, -bytes on free) and taking the largest running sum gives the peak of
tensor memory alive at once during the call, the output included (the inputs, allocated before
the call, are not counted). The test of this script checks that the measurement sees the
``(T, T)`` matrix of the explicit path.

Time: one process, the candidates interleaved round-robin on every repeat (the machine may be
shared: a busy moment slows every candidate of a round, not one), a warm-up call first; the
table reports medians, and ratios of the fastest repeats (other processes only ever add time).
With one thread the clock is the CPU time of the process (``time.process_time``): time spent
waiting while other processes hold the core is not counted, so a loaded machine slows the run but
barely moves the numbers; with more threads it is wall time. One thread by default, for every
candidate: the tiled loop runs thousands of tiny operations, and
on a machine where other processes hold the cores each of them waits for its OpenMP threads
(on the 2-core machine of the committed run, with 2 threads the loop took about 25 times the CPU
time it takes with 1 thread). SDPA's own kernel would gain from more threads; ``--threads`` changes the setting.

Usage: ``python benchmarks/bench_tiled.py [--quick] [--out DIR]`` (writes ``tiled-cpu.json``,
``tiled-cpu.md`` and the plots ``tiled-cpu.en.png``, ``tiled-cpu.ru.png`` into
``docs/assets/benchmark/`` by default; ``--replot`` redraws the plots from the JSON).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from _machine import cpu_model
from torch.profiler import ProfilerActivity, profile

from simple_llm import tiled_attention

SIZES = [256, 512, 1024, 2048, 4096, 8192]
QUICK_SIZES = [64, 128]
HEAD_SIZE = 64
CANDIDATES = ["explicit", "tiled_64", "tiled_256", "sdpa"]
LABELS = {
    "explicit": "softmax(QKᵀ)V",
    "tiled_64": "tiled_attention, block 64",
    "tiled_256": "tiled_attention, block 256",
    "sdpa": "scaled_dot_product_attention",
}


def explicit_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: torch.Tensor
) -> torch.Tensor:
    """softmax(QKᵀ / √hs)V with the (T, T) matrices written out; ``causal`` True = may attend."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T, T)
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1) @ v  # (B, H, T, hs)


def build(T: int) -> dict:
    """Candidate callables (no arguments, return the output) for sequence length T."""
    q, k, v = torch.randn(3, 1, 1, T, HEAD_SIZE).unbind(0)  # (B, H, T, hs) each
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T), True = may attend
    return {
        "explicit": lambda: explicit_attention(q, k, v, causal),
        "tiled_64": lambda: tiled_attention(q, k, v, is_causal=True, block_size=64),
        "tiled_256": lambda: tiled_attention(q, k, v, is_causal=True, block_size=256),
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    }


def peak_mib(call) -> float:
    """Peak tensor memory allocated during ``call()`` and alive at once, in MiB (see the docstring)."""
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()  # negative for a free
        peak = max(peak, current)
    return peak / 2**20


def clock():
    """The timer: CPU time of this process on one thread (waiting for a busy core is not counted),
    wall time otherwise."""
    return time.process_time if torch.get_num_threads() == 1 else time.perf_counter


def time_ms(calls: dict, repeats: int, sample_s: float) -> dict:
    """Per-call milliseconds of each candidate over ``repeats`` interleaved rounds."""
    now = clock()
    inner = {}
    with torch.no_grad():
        for name, call in calls.items():  # warm-up, and how many calls fill one sample
            call()
            start = now()
            call()
            inner[name] = max(1, int(sample_s / max(now() - start, 1e-3)))
        samples = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                start = now()
                for _ in range(inner[name]):
                    call()
                samples[name].append((now() - start) / inner[name] * 1e3)
    return samples


def run(sizes: list[int], repeats: int, sample_s: float) -> list[dict]:
    results = []
    for T in sizes:
        calls = build(T)
        with torch.no_grad():
            reference = calls["sdpa"]()
            for name, call in calls.items():  # the candidates compute the same thing
                torch.testing.assert_close(call(), reference, rtol=1e-4, atol=1e-5, msg=f"{name}, T={T}")
        memory = {name: peak_mib(call) for name, call in calls.items()}
        samples = time_ms(calls, repeats, sample_s)
        row = {
            "T": T,
            "candidates": {
                name: {
                    "peak_mib": memory[name],
                    "ms": statistics.median(samples[name]),
                    "min_ms": min(samples[name]),
                }
                for name in CANDIDATES
            },
            "time_over_sdpa": {name: min(samples[name]) / min(samples["sdpa"]) for name in CANDIDATES},
            "memory_over_sdpa": {name: memory[name] / memory["sdpa"] for name in CANDIDATES},
        }
        results.append(row)
        print(
            f"T={T}: "
            + ", ".join(f"{n} {memory[n]:.2f} MiB x{row['time_over_sdpa'][n]:.1f} time" for n in CANDIDATES),
            flush=True,
        )
    return results


def markdown(results: list[dict], machine: dict) -> str:
    header = (
        "| T | MiB explicit | MiB tiled 64 | MiB tiled 256 | MiB SDPA "
        "| ms SDPA | explicit/SDPA time | tiled 64/SDPA time | tiled 256/SDPA time |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in results:
        c, r = row["candidates"], row["time_over_sdpa"]
        cells = [str(row["T"])] + [f"{c[name]['peak_mib']:.2f}" for name in CANDIDATES]
        cells += [f"{c['sdpa']['ms']:.3f}"] + [
            f"{r[name]:.1f}" for name in ("explicit", "tiled_64", "tiled_256")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"torch {machine['torch']}, {machine['cpu_model']}, {machine['threads']} thread(s); causal, B = H = 1, "
        f"hs = {HEAD_SIZE}, float32, no grad; MiB: peak tensor memory of one call (output included); "
        f"time ({machine['clock']}): fastest of {machine['repeats']} interleaved repeats over SDPA's fastest, > 1 when slower."
    )
    return "\n".join(lines) + "\n"


TEXT = {
    "en": {
        "title": "memory grows as T² or as T",
        "memory": "peak memory, MiB",
        "time": "time, ms",
        "T": "T (sequence length)",
        "block": "block",
    },
    "ru": {
        "title": "память растёт как T² или как T",
        "memory": "пик памяти, МиБ",
        "time": "время, мс",
        "T": "T (длина последовательности)",
        "block": "блок",
    },
}


def plot(results: list[dict], path: str, language: str) -> None:
    """Memory (top) and time (bottom) against T, log-log, labels in ``language``: sized for a phone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = TEXT[language]
    Ts = [row["T"] for row in results]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.2, 6.4), dpi=110, sharex=True)
    styles = {"explicit": "o-", "tiled_64": "s-", "tiled_256": "d--", "sdpa": "^-"}
    for name in CANDIDATES:
        label = LABELS[name].replace("block", text["block"])
        top.plot(Ts, [row["candidates"][name]["peak_mib"] for row in results], styles[name], label=label)
        bottom.plot(Ts, [row["candidates"][name]["min_ms"] for row in results], styles[name])
    top.set(xscale="log", yscale="log", ylabel=text["memory"], title=text["title"])
    bottom.set(xscale="log", yscale="log", ylabel=text["time"], xlabel=text["T"])
    bottom.set_xticks(Ts, [str(T) for T in Ts])
    bottom.set_xticks([], minor=True)
    top.legend(fontsize=8)
    for axes in (top, bottom):
        axes.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke test)")
    parser.add_argument("--out", default="docs/assets/benchmark/", help="output directory")
    parser.add_argument(
        "--repeats", type=int, default=None, help="interleaved rounds (default: 2 quick, 7 full)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for every candidate (default: 1)"
    )
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the plots from tiled-cpu.json in --out"
    )
    args = parser.parse_args()
    if args.replot:
        with open(os.path.join(args.out, "tiled-cpu.json")) as f:
            results = json.load(f)["results"]
        for language in TEXT:
            plot(results, os.path.join(args.out, f"tiled-cpu.{language}.png"), language)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    repeats = args.repeats or (2 if args.quick else 7)
    results = run(QUICK_SIZES if args.quick else SIZES, repeats, 0.005 if args.quick else 0.2)
    machine = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "repeats": repeats,
        "quick": args.quick,
        "head_size": HEAD_SIZE,
        "clock": clock().__name__,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tiled-cpu.json"), "w") as f:
        json.dump({"machine": machine, "results": results}, f, indent=2)
    with open(os.path.join(args.out, "tiled-cpu.md"), "w") as f:
        f.write(markdown(results, machine))
    for language in TEXT:
        plot(results, os.path.join(args.out, f"tiled-cpu.{language}.png"), language)
    print(markdown(results, machine))


if __name__ == "__main__":
    main()
