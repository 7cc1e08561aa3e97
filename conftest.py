"""Project-wide pytest hooks.

nbval re-executes every notebook and compares the text outputs with the stored ones, but it does
not compare images: a stored figure that no longer matches what the code draws would pass. Here
every figure a cell draws now is compared with the stored one by matplotlib's own image
comparison (``matplotlib.testing.compare.compare_images``, the one its test suite uses); when they
differ, the stored, fresh and difference images are kept in ``artifacts/figures/`` (CI uploads them).

The notebooks' kernels must draw the same figures whatever the machine's settings: an ambient
``MPLBACKEND`` (CI images set ``MPLBACKEND=Agg``) would make ``plt.show()`` draw nothing, and a
user's ``matplotlibrc`` would restyle every figure. The notebooks name the backend
(``%matplotlib inline``); as a second guard, before nbval starts any kernel, the backend variable
is dropped here and matplotlib is given an empty configuration folder of its own.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from scripts.background_build import start_build, stop_builds

ROOT = Path(__file__).resolve().parent
FIGURE_ARTIFACTS = ROOT / "artifacts" / "figures"
BROWSER_TESTS = ROOT / "tests" / "browser"
# Root-mean-square difference allowed between a stored and a fresh figure, in colour levels
# (0..255), as matplotlib's own image tests measure it: anti-aliasing noise passes, a recoloured
# heatmap cell or a moved line does not.
RMS_TOLERANCE = 2.0

# The kernels nbval starts inherit this process's environment.
os.environ.pop("MPLBACKEND", None)
os.environ.pop("MATPLOTLIBRC", None)
_MPL_CONFIG = tempfile.TemporaryDirectory(prefix="simple-llm-matplotlib-")  # removed at exit
os.environ["MPLCONFIGDIR"] = _MPL_CONFIG.name


def _pngs(outputs) -> list[bytes]:
    pngs = []
    for output in outputs:
        data = output.get("data", {}) if hasattr(output, "get") else {}
        if data.get("image/png"):
            pngs.append(base64.b64decode(data["image/png"]))
    return pngs


def figure_mismatch(
    stored_outputs, fresh_outputs, name: str = "figure", keep_in: Path = FIGURE_ARTIFACTS
) -> str | None:
    """Why the figures of a cell's fresh outputs differ from its stored ones, or None.

    When a figure differs, its stored, fresh and difference images are kept in ``keep_in`` as
    ``<name>-<number>-{stored,fresh,diff}.png``.
    """
    from matplotlib.testing.compare import compare_images
    from matplotlib.testing.exceptions import ImageComparisonFailure

    stored, fresh = _pngs(stored_outputs), _pngs(fresh_outputs)
    if len(stored) != len(fresh):
        return f"the cell drew {len(fresh)} figure(s), the notebook stores {len(stored)}"
    with tempfile.TemporaryDirectory() as folder:
        for number, (old, new) in enumerate(zip(stored, fresh), start=1):
            expected, actual = Path(folder, "expected.png"), Path(folder, "actual.png")
            expected.write_bytes(old)
            actual.write_bytes(new)
            try:
                result = compare_images(str(expected), str(actual), tol=RMS_TOLERANCE, in_decorator=True)
            except ImageComparisonFailure as error:  # different sizes
                return f"figure {number}: {error}"
            if result is not None:
                keep_in.mkdir(parents=True, exist_ok=True)
                stem = re.sub(r"[^\w.-]+", "_", f"{name}-{number}")
                for kind, path in (("stored", expected), ("fresh", actual), ("diff", Path(result["diff"]))):
                    shutil.copyfile(path, keep_in / f"{stem}-{kind}.png")
                return (
                    f"figure {number}: its pixels differ from the stored figure (RMS {result['rms']:.2f} > "
                    f"{RMS_TOLERANCE} of 255; images: {keep_in / stem}-*.png)"
                )
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    fresh = getattr(item, "test_outputs", None)
    if outcome.excinfo is not None or fresh is None or not hasattr(item, "cell"):
        return
    problem = figure_mismatch(item.cell.outputs, fresh, name=f"{item.path.name}-{item.name}")
    if problem is not None:
        outcome.force_exception(
            AssertionError(
                f"{item.name}: {problem}. Regenerate with `make notebooks` if the change is intended."
            )
        )


# The built sites, shared by the HTML checks (tests/docs) and the browser checks (tests/browser) --
# ``mkdocs build --strict`` of the site takes about 40 s of CPU; the offline copy of tests/browser/
# test_offline_copy.py is converted from it (scripts/build_offline.py), not built again. When the
# collected tests need the site, its build is started in the background as soon as collection
# ends, and the modules that use it run last:
# the build uses the second core while the tests that need no build run on the first.
# The fixtures wait for their build and fail on its errors or warnings, as a build in the
# foreground would.
def _builds_needed(item) -> set[str]:
    names = set(getattr(item, "fixturenames", ()))
    kinds = set()
    # tests/browser reach the site through site_root, which builds it unless SIMPLE_LLM_BUILT_SITE
    # names a site built beforehand (tests/browser/conftest.py).
    if "built_site" in names or ("site_root" in names and not os.environ.get("SIMPLE_LLM_BUILT_SITE")):
        kinds.add("site")
    if "offline_copy" in names:
        kinds.add("offline")
    return kinds


def pytest_itemcollected(item):
    """The markers of pyproject.toml that say what a test needs beyond Python (``make check`` runs
    ``-m "not browser and not notebooks and not site"``): ``notebooks`` for every nbval cell,
    ``browser`` for tests/browser (Chromium), ``site`` for a test that needs a site build."""
    if item.path.suffix == ".ipynb":
        item.add_marker(pytest.mark.notebooks)
    if BROWSER_TESTS in item.path.parents:
        item.add_marker(pytest.mark.browser)
    if _builds_needed(item):
        item.add_marker(pytest.mark.site)


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    # The larger fuzz (tests/test_fuzz.py) runs only when asked for: -m fuzz_large.
    if "fuzz_large" not in (config.option.markexpr or ""):
        large = [i for i in items if i.get_closest_marker("fuzz_large")]
        if large:
            config.hook.pytest_deselected(items=large)
            items[:] = [i for i in items if not i.get_closest_marker("fuzz_large")]
    late: set[Path] = set()  # the folders of the tests that need a build run last, whole
    for item in items:
        kinds = _builds_needed(item)
        for kind in kinds if not config.option.collectonly else ():
            start_build(kind)
        if kinds:
            late.add(item.path.parent)
    items[:] = [i for i in items if i.path.parent not in late] + [i for i in items if i.path.parent in late]


def pytest_sessionfinish(session, exitstatus):
    stop_builds()


@pytest.fixture(scope="session")
def built_site() -> Path:
    """The site, built with ``mkdocs build --strict``; fails on any warning."""
    return start_build("site").result()
