"""Benchmark generation: greedy decoding with and without the KV cache, and the cache's memory.

Speed: ``GPT.generate(x, n, do_sample=False, use_cache=...)`` on one model (eval mode, float32,
batch 1, a 16-token prompt) for ``n`` in 50, 200 and 500 new tokens; ``max_seq_len`` is large
enough that the window never slides. Both variants run in the same process, interleaved
round-robin; the table gives tokens per second of the fastest repeat and their ratio, and
checks that both produced the same tokens.

Memory: a model with ``L`` layers, ``H`` query heads, ``H_kv`` key/value heads and head size
``hs`` reads a prompt of ``T`` tokens into its cache; the bytes held by the cache, divided by
``B * T``, are compared with the formula ``2 * L * H_kv * hs * bytes`` (keys and values, every
layer, every key/value head). ``emb_size`` does not enter the formula, so the memory models use
a small one.

Timings depend on the machine and on its load: compare the ratios within one run, and run it
on a quiet machine (``nice -n -10 python ...``).

On a loaded machine ``--threads 1`` distorts less: with several threads a busy core stalls
every parallel region.

Usage: ``python benchmarks/bench_generation.py [--quick] [--out DIR] [--device cpu|cuda]
[--repeats N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time

import torch
from _machine import cpu_model

from simple_llm import GPT

SPEED_MODEL = {"vocab_size": 512, "emb_size": 256, "num_heads": 8, "head_size": 32, "num_layers": 4}
QUICK_SPEED_MODEL = {"vocab_size": 32, "emb_size": 16, "num_heads": 2, "head_size": 8, "num_layers": 2}
NEW_TOKENS = [50, 200, 500]
QUICK_NEW_TOKENS = [4, 8]
PROMPT = 16
# (name, layers L, query heads H, head size hs); H_kv is H (MHA), H/4 (GQA) and 1 (MQA).
MEMORY_SIZES = [("small", 4, 8, 32), ("GPT-2 small", 12, 12, 64), ("7B-like", 32, 32, 128)]
QUICK_MEMORY_SIZES = [("tiny", 2, 8, 8)]


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def speed(model_args, new_tokens, repeats, device):
    torch.manual_seed(0)
    model = GPT(max_seq_len=PROMPT + max(new_tokens), dropout=0.0, **model_args).to(device).eval()
    prompt = torch.randint(0, model_args["vocab_size"], (1, PROMPT), device=device)
    model.generate(prompt, 4, do_sample=False)  # warm-up
    model.generate(prompt, 4, do_sample=False, use_cache=False)
    rows = []
    for n in new_tokens:
        times = {True: [], False: []}
        outputs = {}
        for _ in range(repeats):
            for use_cache in (True, False):
                sync(device)
                start = time.perf_counter()
                outputs[use_cache] = model.generate(prompt, n, do_sample=False, use_cache=use_cache)
                sync(device)
                times[use_cache].append(time.perf_counter() - start)
        cached, plain = min(times[True]), min(times[False])
        rows.append(
            {
                "new_tokens": n,
                "tokens_per_s_cache": n / cached,
                "tokens_per_s_no_cache": n / plain,
                "speedup": plain / cached,
                "same_tokens": bool(torch.equal(outputs[True], outputs[False])),
                "repeats": repeats,
            }
        )
        print(f"{n} new tokens: speed-up {plain / cached:.2f}", flush=True)
    return rows


def memory(sizes, device, T=64, B=2):
    rows = []
    for name, L, H, hs in sizes:
        for kind, H_kv in (("MHA", H), ("GQA", max(1, H // 4)), ("MQA", 1)):
            torch.manual_seed(0)
            model = (
                GPT(16, T, 32, H, hs, L, dropout=0.0, num_kv_heads=H_kv, positions="rope").to(device).eval()
            )
            cache = model.new_cache()
            with torch.no_grad():
                model(torch.randint(0, 16, (B, T), device=device), cache)
            bytes_per = torch.finfo(torch.float32).bits // 8
            measured = sum(c.nbytes() for c in cache) / (B * T)
            rows.append(
                {
                    "size": name,
                    "L": L,
                    "H": H,
                    "hs": hs,
                    "attention": kind,
                    "H_kv": H_kv,
                    "bytes_per_token_measured": measured,
                    "bytes_per_token_formula": 2 * L * H_kv * hs * bytes_per,
                    "fp16_kib_per_token": 2 * L * H_kv * hs * 2 / 1024,
                }
            )
            del model, cache
    return rows


def markdown(speed_rows, memory_rows, machine):
    lines = [
        "| new tokens | tokens/s, cache | tokens/s, no cache | speed-up | same tokens |",
        "|---|---|---|---|---|",
    ]
    for r in speed_rows:
        lines.append(
            f"| {r['new_tokens']} | {r['tokens_per_s_cache']:.1f} | {r['tokens_per_s_no_cache']:.1f} "
            f"| {r['speedup']:.1f}x | {'yes' if r['same_tokens'] else 'NO'} |"
        )
    m = machine["speed_model"]
    lines += [
        "",
        f"Model: {m['num_layers']} layers, C={m['emb_size']}, H={m['num_heads']}, hs={m['head_size']}, "
        f"V={m['vocab_size']}, learned positions; greedy, batch 1, prompt of {PROMPT} tokens; torch "
        f"{machine['torch']}, {machine['device_name']}, torch threads: {machine['threads']}, float32, fastest of "
        f"{speed_rows[0]['repeats']} interleaved repeats.",
        "",
        "| size (L, H, hs) | attention | H_kv | bytes/token measured | 2·L·H_kv·hs·4 | KiB/token in fp16 |",
        "|---|---|---|---|---|---|",
    ]
    for r in memory_rows:
        lines.append(
            f"| {r['size']} ({r['L']}, {r['H']}, {r['hs']}) | {r['attention']} | {r['H_kv']} "
            f"| {r['bytes_per_token_measured']:.0f} | {r['bytes_per_token_formula']} "
            f"| {r['fp16_kib_per_token']:g} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and few tokens (smoke test)")
    parser.add_argument("--out", default="docs/assets/benchmark/", help="output directory")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per length")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model_args = QUICK_SPEED_MODEL if args.quick else SPEED_MODEL
    speed_rows = speed(model_args, QUICK_NEW_TOKENS if args.quick else NEW_TOKENS, args.repeats, args.device)
    memory_rows = memory(QUICK_MEMORY_SIZES if args.quick else MEMORY_SIZES, args.device)
    machine = {
        "torch": torch.__version__,
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else cpu_model(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "date": datetime.date.today().isoformat(),
        "speed_model": model_args,
    }
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"generation-{args.device}")
    with open(stem + ".json", "w") as f:
        json.dump({"machine": machine, "speed": speed_rows, "memory": memory_rows}, f, indent=2)
    table = markdown(speed_rows, memory_rows, machine)
    with open(stem + ".md", "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
