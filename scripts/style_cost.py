"""What a page costs the browser's main thread, with and without some CSS (A/B, in one run).

Loads a page of a built site, served as Pages serves it (scripts/serve_like_pages.py), in
Chromium on a 412×823 phone with the CPU slowed 4× (as Lighthouse's phone), ``--repeats`` times,
alternating between the page as built (A) and the page with its CSS changed on the way (B):
``--drop TEXT`` removes every selector that contains TEXT from its stylesheets (with tinycss2),
``--add CSS`` appends rules to the site's own stylesheet (extra.css). Prints the median style
recalculation, layout and script time Chromium reports (``Performance.getMetrics``) for A and B,
and their ratio. This is how JupyterLab's ``::selection`` rule was found to make the style work
of notebook 05 1.4 times as long (hooks/notebook_css.py drops it since); to see it again:

    python scripts/style_cost.py SITE_DIR notebooks/05_seeing_heads/ \
        --add '.jupyter-wrapper ::selection{background:rgba(125,188,255,.6)}'
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hooks.palette_css import without  # noqa: E402
from scripts.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from scripts.serve_like_pages import PREFIX, PagesServer  # noqa: E402

PHONE = {"viewport": {"width": 412, "height": 823}, "device_scale_factor": 1.75, "is_mobile": True}
METRICS = {"style, ms": "RecalcStyleDuration", "layout, ms": "LayoutDuration", "script, ms": "ScriptDuration"}


def measure(browser, url: str, drop: str | None = None, add: str | None = None) -> dict[str, float]:
    context = browser.new_context(**PHONE)
    try:
        if drop or add:

            def rewrite(route):
                response = route.fetch()
                css = without(response.text(), drop) if drop else response.text()
                if add and route.request.url.endswith("/stylesheets/extra.css"):
                    css += "\n" + add
                route.fulfill(response=response, body=css)

            context.route("**/*.css", rewrite)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
        page.goto(url, wait_until="load")
        page.wait_for_timeout(1000)
        values = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {label: 1000 * values[name] for label, name in METRICS.items()}
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("path", help="the page, relative to the site root, e.g. notebooks/05_seeing_heads/")
    parser.add_argument("--drop", help="B drops the CSS selectors that contain this text")
    parser.add_argument("--add", help="B appends these CSS rules to the site's extra.css")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--port", type=int, default=8102)
    args = parser.parse_args()
    if not (args.drop or args.add):
        parser.error("say what B changes: --drop TEXT, --add CSS or both")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if not (args.site / "index.html").is_file():
        parser.error(f"{args.site} is not a built site (no index.html)")
    from playwright.sync_api import sync_playwright

    server = PagesServer(args.site, PREFIX, args.port)
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(args.repeats):  # alternating, so that a busy moment hits both
                runs["A"].append(measure(browser, server.url(args.path), None))
                runs["B"].append(measure(browser, server.url(args.path), args.drop, args.add))
            browser.close()
    finally:
        server.close()
    change = "; ".join(
        text
        for text in (args.drop and f"drops selectors with {args.drop!r}", args.add and f"adds {args.add!r}")
        if text
    )
    print(f"/{args.path}, phone, CPU 4x slower, median of {args.repeats}; B {change}")
    for label in METRICS:
        a = statistics.median(r[label] for r in runs["A"])
        b = statistics.median(r[label] for r in runs["B"])
        print(f"  {label:11} A {a:7.0f}   B {b:7.0f}   B/A {b / a:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
