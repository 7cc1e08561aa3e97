"""The one browser every script and test drives: Debian's Chromium, started headless with the
flags that keep it off the network (this machine's closed network refuses its background calls)."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("SIMPLE_LLM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
