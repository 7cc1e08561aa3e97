"""Lighthouse on one page of two builds of the site, side by side (issue 26: chapter 12 before and
after the formulas were typeset).

A single Lighthouse run is noisy (see scripts/lighthouse.py), and the noise moves with whatever
else the machine does. So the two builds are served at once and their runs alternate, A, B, A,
B, ..., on the same machine in the same minutes; the table gives, for each build, Lighthouse's own
median run of the page (``computeMedianRun``) with the lowest and highest performance score, and
the median of each metric over the runs. It writes the table to
docs/assets/benchmark/lighthouse-formulas.md (the benchmark page includes it).

    python scripts/lighthouse_compare.py BEFORE_SITE AFTER_SITE [--page chapters/12-tiled-attention/]
        [--runs 5] [--before-name "..."] [--after-name "..."]

BEFORE_SITE is e.g. a site built at the commit before the formulas: ``git worktree add
/tmp/before fd1e151^`` and ``mkdocs build --site-dir /tmp/before-site`` there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.lighthouse import LIGHTHOUSE, median_run, run  # noqa: E402
from scripts.serve_like_pages import PREFIX, PagesServer  # noqa: E402

TABLE = ROOT / "docs" / "assets" / "benchmark" / "lighthouse-formulas.md"
METRICS = (
    ("tti_s", "interactive, s", 1),
    ("lcp_s", "LCP, s", 1),
    ("tbt_ms", "blocking, ms", 0),
    ("cls", "CLS", 2),
)


def row(name: str, runs: list[dict], median: dict) -> str:
    low, high = min(r["performance"] for r in runs), max(r["performance"] for r in runs)
    metrics = " | ".join(
        f"{statistics.median(r[key] for r in runs):.{digits}f}" for key, _, digits in METRICS
    )
    indices = [r["benchmark_index"] for r in runs]
    return (
        f"| {name} | {median['performance']} | {low}–{high} | {median['accessibility']} | {metrics} | "
        f"{median['kb']:.0f} | {len(runs)} | {min(indices):.0f}–{max(indices):.0f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--page", default="chapters/12-tiled-attention/")
    parser.add_argument("--runs", type=int, default=5, help="runs of each build (default 5)")
    parser.add_argument(
        "--before-name",
        default="before",
        help="the first column's name for BEFORE_SITE (the table is on pages of both languages: a name, not a phrase)",
    )
    parser.add_argument("--after-name", default="after")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    for site in (args.before, args.after):
        if not (site / args.page / "index.html").is_file():
            parser.error(f"{site} has no page {args.page}")
    if not LIGHTHOUSE.is_file():
        sys.exit(f"{LIGHTHOUSE} is missing: `make lighthouse` installs it with npm")
    servers = [PagesServer(args.before, PREFIX), PagesServer(args.after, PREFIX)]
    results: list[list[dict]] = [[], []]
    try:
        with tempfile.TemporaryDirectory() as temporary:
            outs: list[list[Path]] = [[], []]
            for number in range(args.runs):
                for which, server in enumerate(servers):
                    out = Path(temporary) / f"report-{which}-{number}.json"
                    results[which].append(run(server.url(args.page), "mobile", out))
                    outs[which].append(out)
                    print(f"{('before', 'after')[which]} run {number + 1}: {results[which][-1]}", flush=True)
            medians = [results[w][median_run(outs[w]) if args.runs > 1 else 0] for w in (0, 1)]
    finally:
        for server in servers:
            server.close()
    head = (
        "| build | performance | lowest–highest | accessibility | "
        + " | ".join(title for _, title, _ in METRICS)
        + " | KB | runs | benchmark index |"
    )
    lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    lines += [row(name, results[w], medians[w]) for w, name in enumerate((args.before_name, args.after_name))]
    text = "\n".join(lines)
    TABLE.write_text(text + "\n", encoding="utf-8")  # the pages of both languages include it
    print("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
