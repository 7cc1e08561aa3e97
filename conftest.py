"""Project-wide pytest hooks.

nbval re-executes every notebook and compares the text outputs with the stored ones, but it does
not compare images: a stored figure that no longer matches what the code draws would pass. Here
every figure a cell draws now is decoded and compared with the stored figure, pixel by pixel.
"""

from __future__ import annotations

import base64
import io

import pytest

# A stored and a fresh figure differ only if more than this share of pixels moved by more than
# PIXEL_TOLERANCE (0..1 per channel): anti-aliasing noise passes, a changed plot does not.
PIXEL_TOLERANCE = 0.1
MAX_CHANGED_SHARE = 0.001


def _images(outputs) -> list:
    import matplotlib.image

    images = []
    for output in outputs:
        data = output.get("data", {}) if hasattr(output, "get") else {}
        png = data.get("image/png")
        if png:
            images.append(matplotlib.image.imread(io.BytesIO(base64.b64decode(png)), format="png"))
    return images


def figure_mismatch(stored_outputs, fresh_outputs) -> str | None:
    """Why the figures of a cell's fresh outputs differ from its stored ones, or None."""
    import numpy as np

    stored, fresh = _images(stored_outputs), _images(fresh_outputs)
    if len(stored) != len(fresh):
        return f"the cell drew {len(fresh)} figure(s), the notebook stores {len(stored)}"
    for number, (old, new) in enumerate(zip(stored, fresh), start=1):
        if old.shape != new.shape:
            return f"figure {number}: stored size {old.shape}, drawn now {new.shape}"
        changed = float((np.abs(old - new) > PIXEL_TOLERANCE).any(axis=-1).mean())
        if changed > MAX_CHANGED_SHARE:
            return f"figure {number}: {changed:.2%} of its pixels differ from the stored figure"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    fresh = getattr(item, "test_outputs", None)
    if outcome.excinfo is not None or fresh is None or not hasattr(item, "cell"):
        return
    problem = figure_mismatch(item.cell.outputs, fresh)
    if problem is not None:
        outcome.force_exception(
            AssertionError(
                f"{item.name}: {problem}. Regenerate with `make notebooks` if the change is intended."
            )
        )


# The built site, shared by the HTML checks (tests/docs) and the browser checks (tests/browser) ---
@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """``mkdocs build --strict`` into a temporary folder; fails on any warning."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    site = tmp_path_factory.mktemp("site")
    root = Path(__file__).resolve().parent
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    warnings = [line for line in log.splitlines() if line.startswith("WARNING")]
    assert not warnings, "mkdocs build printed warnings:\n" + "\n".join(warnings)
    return site
