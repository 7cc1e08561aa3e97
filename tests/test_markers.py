"""The markers that split the quick checks (make check) from the slow ones (make test)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = [
    "tests/test_masks.py",  # package: no marker
    "tests/docs/test_includes.py",  # docs, no build: no marker
    "tests/docs/test_site.py",  # some tests need the built site: site
    "tests/browser/test_attention_view.py",  # Chromium (and the site): browser
    "docs/notebooks/04_masks.en.ipynb",  # nbval: notebooks
]
QUICK = "not browser and not notebooks and not site"
# One collection (no build starts on --collect-only); prints {node id: [markers, fixtures]}.
COLLECT = """
import json, sys, pytest
class Record:
    def pytest_collection_finish(self, session):
        print("MARKERS " + json.dumps({
            i.nodeid: [sorted({m.name for m in i.iter_markers()} & {"browser", "notebooks", "site"}),
                       sorted(getattr(i, "fixturenames", ()))]
            for i in session.items}))
sys.exit(pytest.main(["--collect-only", "-q", "--strict-markers", *sys.argv[1:]], plugins=[Record()]))
"""


def test_each_marker_marks_what_it_names():
    env = {k: v for k, v in os.environ.items() if k != "SIMPLE_LLM_BUILT_SITE"}
    out = subprocess.run(
        [sys.executable, "-c", COLLECT, *SAMPLE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = next(line for line in out.stdout.splitlines() if line.startswith("MARKERS "))
    items = json.loads(line.removeprefix("MARKERS "))
    assert {node.split("::")[0] for node in items} == set(SAMPLE)
    for node, (markers, fixtures) in items.items():
        path = node.split("::")[0]
        needs_build = bool({"built_site", "site_root", "offline_copy"} & set(fixtures))
        expected = {"notebooks"} if path.endswith(".ipynb") else set()
        expected |= {"browser"} if path.startswith("tests/browser/") else set()
        expected |= {"site"} if needs_build else set()
        assert set(markers) == expected, node
    quick = {node.split("::")[0] for node, (markers, _) in items.items() if not markers}
    assert quick == {"tests/test_masks.py", "tests/docs/test_includes.py", "tests/docs/test_site.py"}


def test_make_check_runs_the_quick_selection_after_the_lint():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^check: (.*)\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert recipe and "lint" in recipe.group(1).split()
    assert f'-m "{QUICK}"' in recipe.group(2)
