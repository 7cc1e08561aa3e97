"""Screenshots of pages as readers meet them: served like Pages, on a desktop and a phone, in the
light and the dark palette (for looking at changes; the browser tests take their own).

    python scripts/screenshots.py SITE_DIR OUT_DIR [PATH ...]   # PATH relative to the site root
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from scripts.serve_like_pages import PREFIX, PagesServer  # noqa: E402

DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}
DEFAULT_PATHS = ["", "chapters/03-multi-head/", "notebooks/03_multi_head/", "notebooks/05_seeing_heads/"]


def main() -> None:
    site, out, *paths = sys.argv[1:]
    paths = paths or [p for base in DEFAULT_PATHS for p in (base, f"en/{base}")]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    server = PagesServer(Path(site), PREFIX)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for device, options in DEVICES.items():
                for scheme in ("light", "dark"):
                    context = browser.new_context(**options, color_scheme=scheme)
                    for path in paths:
                        page = context.new_page()
                        page.goto(server.url(path), wait_until="load")
                        name = (
                            (path.strip("/").replace("/", "_") or "home")
                            if not path.startswith("en/")
                            else None
                        )
                        name = name or "en_" + (path[3:].strip("/").replace("/", "_") or "home")
                        if not name.startswith("en_"):
                            name = "ru_" + name
                        page.screenshot(path=str(out_dir / f"{name}-{device}-{scheme}.png"), full_page=False)
                        page.close()
                    context.close()
            browser.close()
    finally:
        server.close()
    print(f"screenshots in {out_dir}")


if __name__ == "__main__":
    main()
