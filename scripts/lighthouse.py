"""Lighthouse scores of the site as readers meet it (``make lighthouse``).

Serves a built site the way GitHub Pages does (scripts/serve_like_pages.py: sub-path, gzip,
404.html), runs the npm package ``lighthouse`` (installed into node_modules/ by the make target)
with Debian's Chromium, headless, for the home page, chapter 3, notebook 05 and the glossary in
both languages, on a simulated mobile (Lighthouse's default: Moto G Power, slow 4G) and on a
desktop, and prints one table. It writes the table to docs/assets/benchmark/lighthouse.md, which
the benchmark page includes. A measurement, not a test: the scores move a little from run to run.

    python scripts/lighthouse.py SITE_DIR [--port 8101]
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
    report = json.loads(out.read_text(encoding="utf-8"))
    scores = {c: round(100 * (report["categories"][c]["score"] or 0)) for c in CATEGORIES}
    audits = report["audits"]
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
    head = (
        "| page | language | device | performance | accessibility | best practices | SEO "
        "| interactive, s | LCP, s | blocking, ms | CLS | KB |"
    )
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for page, language, device, s in rows:
        lines.append(
            f"| {page} | {language} | {device} | {s['performance']} | {s['accessibility']} | "
            f"{s['best-practices']} | {s['seo']} | {s['tti_s']:.1f} | {s['lcp_s']:.1f} | {s['tbt_ms']:.0f} | "
            f"{s['cls']:.2f} | {s['kb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    if not LIGHTHOUSE.is_file():
        sys.exit(f"{LIGHTHOUSE} is missing: `make lighthouse` installs it with npm")
    server = PagesServer(args.site, PREFIX, args.port)
    rows, failed = [], {}
    try:
        with tempfile.TemporaryDirectory() as temporary:
            for page, path in PAGES.items():
                for language, prefix in LANGUAGES.items():
                    for device in ("mobile", "desktop"):
                        out = Path(temporary) / "report.json"
                        scores = run(server.url(prefix + path), device, out)
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
