"""Lighthouse scores of the site as readers meet it (``make lighthouse``).

Serves a built site the way GitHub Pages does (scripts/serve_like_pages.py: sub-path, gzip,
404.html), runs the npm package ``lighthouse`` (installed into node_modules/ by the make target)
with Debian's Chromium, headless, for the home page, chapter 3, notebook 05 and the glossary in
both languages, on a simulated mobile (Lighthouse's default: Moto G Power, slow 4G) and on a
desktop, and prints one table. It writes the table to docs/assets/benchmark/lighthouse.md, which
the benchmark page includes. A measurement, not a test.

A single Lighthouse run is noisy: the phone is simulated from a trace of the page on this machine,
so whatever else the machine does at that moment moves the score (on a two-core machine, the
browser, Lighthouse and the server share the cores). Each page is therefore run ``--runs`` times
(3 by default) and the table shows Lighthouse's own median run (``computeMedianRun`` from
lighthouse/core/lib/median-run.js: the run nearest the median first paint and time to
interactive), with the lowest and highest performance score of all runs beside it, and the
machine's benchmark index (Lighthouse's measure of how fast this CPU was during the runs).

    python scripts/lighthouse.py SITE_DIR [--port 8101] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.serve_like_pages import PREFIX, PagesServer  # noqa: E402

LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = os.environ.get("SIMPLE_LLM_CHROMIUM", "/usr/bin/chromium")
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-background-networking --no-first-run"
PAGES = {
    "home": "",
    "chapter 3": "chapters/03-multi-head/",
    "notebook 05": "notebooks/05_seeing_heads/",
    "glossary": "glossary/",
}
LANGUAGES = {"ru": "", "en": "en/"}
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
TABLE = ROOT / "docs" / "assets" / "benchmark" / "lighthouse.md"


MEDIAN_RUN = """
import {readFileSync} from 'node:fs';
import {computeMedianRun} from 'lighthouse/core/lib/median-run.js';
const runs = process.argv.slice(1).map((path) => JSON.parse(readFileSync(path, 'utf8')));
process.stdout.write(String(runs.indexOf(computeMedianRun(runs))));
"""


def median_run(reports: list[Path]) -> int:
    """The index of Lighthouse's median run among ``reports`` (its own computeMedianRun)."""
    done = subprocess.run(
        ["node", "--input-type=module", "-e", MEDIAN_RUN, *map(str, reports)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return int(done.stdout)


def run(url: str, form_factor: str, out: Path) -> dict:
    command = [
        str(LIGHTHOUSE),
        url,
        "--quiet",
        "--output=json",
        f"--output-path={out}",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--chrome-flags={CHROME_FLAGS}",
    ]
    if form_factor == "desktop":
        command.append("--preset=desktop")
    subprocess.run(command, check=True, env={**os.environ, "CHROME_PATH": CHROMIUM})
    return scores_of(json.loads(out.read_text(encoding="utf-8")))


def scores_of(report: dict) -> dict:
    scores = {c: round(100 * (report["categories"][c]["score"] or 0)) for c in CATEGORIES}
    scores["benchmark_index"] = report["environment"]["benchmarkIndex"]
    audits = report["audits"]
    scores["fcp_s"] = audits["first-contentful-paint"]["numericValue"] / 1000
    scores["tti_s"] = audits["interactive"]["numericValue"] / 1000
    scores["lcp_s"] = audits["largest-contentful-paint"]["numericValue"] / 1000
    scores["kb"] = audits["total-byte-weight"]["numericValue"] / 1024
    scores["tbt_ms"] = audits["total-blocking-time"]["numericValue"]
    scores["cls"] = audits["cumulative-layout-shift"]["numericValue"]
    scores["failed"] = sorted(
        key
        for c in ("accessibility", "best-practices", "seo")
        for ref in report["categories"][c]["auditRefs"]
        if ref["weight"] > 0
        for key in [ref["id"]]
        if audits[key]["score"] is not None and audits[key]["score"] < 1
    )
    return scores


def table(rows: list[tuple[str, str, str, dict]]) -> str:
    """The Markdown table; page, language and device share the first column, so that the
    performance score is the second one (in view on a phone, where the table scrolls)."""
    head = (
        "| page | performance | lowest–highest | accessibility | best practices | SEO "
        "| interactive, s | LCP, s | blocking, ms | CLS | KB | runs | benchmark index |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for page, language, device, s in rows:
        lines.append(
            f"| {page}, {language}, {device} | {s['performance']} | {s['range']} | {s['accessibility']} | "
            f"{s['best-practices']} | {s['seo']} | {s['tti_s']:.1f} | {s['lcp_s']:.1f} | {s['tbt_ms']:.0f} | "
            f"{s['cls']:.2f} | {s['kb']:.0f} | {len(s['benchmark_indices'])} | "
            f"{min(s['benchmark_indices']):.0f}–{max(s['benchmark_indices']):.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page and device (default 3)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if not LIGHTHOUSE.is_file():
        sys.exit(f"{LIGHTHOUSE} is missing: `make lighthouse` installs it with npm")
    server = PagesServer(args.site, PREFIX, args.port)
    rows, failed = [], {}
    try:
        with tempfile.TemporaryDirectory() as temporary:
            for page, path in PAGES.items():
                for language, prefix in LANGUAGES.items():
                    for device in ("mobile", "desktop"):
                        outs = [Path(temporary) / f"report-{i}.json" for i in range(args.runs)]
                        runs = [run(server.url(prefix + path), device, out) for out in outs]
                        scores = runs[median_run(outs) if args.runs > 1 else 0]
                        low, high = min(r["performance"] for r in runs), max(r["performance"] for r in runs)
                        scores["range"] = f"{low}–{high}"
                        scores["benchmark_indices"] = [r["benchmark_index"] for r in runs]
                        rows.append((page, language, device, scores))
                        for audit in scores["failed"]:
                            failed.setdefault(audit, []).append(f"{page} {language} {device}")
                        print(f"{page} {language} {device}: {scores}", flush=True)
    finally:
        server.close()
    text = table(rows)
    notes = "".join(f"\n- `{audit}`: {', '.join(where)}" for audit, where in sorted(failed.items()))
    TABLE.write_text(text + "\n", encoding="utf-8")
    print("\n" + text)
    print("\nAudits below 1 (accessibility, best practices, SEO):" + (notes or " none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
