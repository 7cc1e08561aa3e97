"""Lighthouse on one page of several builds of the site, side by side (issue 26: chapter 12 before
and after the formulas were typeset).

A single Lighthouse run is noisy (see scripts/lighthouse.py), and the noise moves with whatever
else the machine does. So the builds are served at once and their runs take turns, A, B, C, A,
B, C, ..., on the same machine in the same minutes; the table gives, for each build, Lighthouse's
own median run of the page (``computeMedianRun``) with the lowest and highest performance score,
and the median of each metric over the runs. It writes the table to ``--table``, by default
docs/assets/benchmark/lighthouse-formulas.md (the benchmark page includes it), a row per build in
the order given: the first is the one before, the last the site now.

    python scripts/lighthouse_compare.py SITE SITE [SITE ...] --name NAME --name NAME [...]
        [--page chapters/12-tiled-attention/] [--runs 5] [--table FILE]

A site before a change is e.g. one built at the commit before it: ``git worktree add /tmp/before
fd1e151^`` and ``mkdocs build --site-dir /tmp/before-site`` there.
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
    ("fcp_s", "FCP, s", 1),
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
    parser.add_argument("sites", type=Path, nargs="+", help="the built sites, the one before first")
    parser.add_argument("--page", default="chapters/12-tiled-attention/")
    parser.add_argument("--runs", type=int, default=5, help="runs of each build (default 5)")
    parser.add_argument(
        "--table", type=Path, default=TABLE, help=f"where the table goes (default {TABLE.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        help="the first column's name for each site, in order (the table is on pages of both "
        "languages: a name, not a phrase)",
    )
    args = parser.parse_args()
    if len(args.sites) < 2:
        parser.error(f"give at least two sites to compare, got {len(args.sites)}")
    if len(args.name) != len(args.sites):
        parser.error(f"give a --name for each of the {len(args.sites)} sites, got {len(args.name)}")
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    for site in args.sites:
        if not (site / args.page / "index.html").is_file():
            parser.error(f"{site} has no page {args.page}")
    if not LIGHTHOUSE.is_file():
        sys.exit(f"{LIGHTHOUSE} is missing: `make lighthouse` installs it with npm")
    servers = [PagesServer(site, PREFIX) for site in args.sites]
    results: list[list[dict]] = [[] for _ in servers]
    try:
        with tempfile.TemporaryDirectory() as temporary:
            outs: list[list[Path]] = [[] for _ in servers]
            for number in range(args.runs):
                for which, server in enumerate(servers):
                    out = Path(temporary) / f"report-{which}-{number}.json"
                    results[which].append(run(server.url(args.page), "mobile", out))
                    outs[which].append(out)
                    print(f"{args.name[which]} run {number + 1}: {results[which][-1]}", flush=True)
            medians = [results[w][median_run(outs[w]) if args.runs > 1 else 0] for w in range(len(servers))]
    finally:
        for server in servers:
            server.close()
    head = (
        "| build | performance | lowest–highest | accessibility | "
        + " | ".join(title for _, title, _ in METRICS)
        + " | KB | runs | benchmark index |"
    )
    lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    lines += [row(name, results[w], medians[w]) for w, name in enumerate(args.name)]
    text = "\n".join(lines)
    args.table.write_text(text + "\n", encoding="utf-8")  # the pages of both languages include it
    print("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
