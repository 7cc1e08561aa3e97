"""The pixel comparison of stored and fresh figures (root conftest.py) can fail."""

from __future__ import annotations

import base64
import importlib.util
import io

import matplotlib.image
import numpy as np

from .helpers import NOTEBOOKS, ROOT, read_notebook

_spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
_root_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root_conftest)
figure_mismatch = _root_conftest.figure_mismatch


def _stored_figure_output():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in read_notebook(path).cells:
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    return output
    raise AssertionError("no notebook stores a figure")


def _with_png(output, image) -> dict:
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, image, format="png")
    return {"data": {"image/png": base64.b64encode(buffer.getvalue()).decode()}}


def test_same_figure_passes_and_changed_figure_fails(tmp_path):
    stored = _stored_figure_output()
    image = matplotlib.image.imread(io.BytesIO(base64.b64decode(stored["data"]["image/png"])), format="png")
    assert figure_mismatch([stored], [_with_png(stored, image)]) is None
    changed = image.copy()
    h, w = changed.shape[:2]
    changed[h // 4 : h // 2, w // 4 : w // 2, :3] = 1 - changed[h // 4 : h // 2, w // 4 : w // 2, :3]
    assert "pixels differ" in figure_mismatch([stored], [_with_png(stored, changed)], "x", keep_in=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x-1-diff.png", "x-1-fresh.png", "x-1-stored.png"]
    assert "size" in figure_mismatch([stored], [_with_png(stored, np.ascontiguousarray(image[:-3]))])
    assert "drew 0 figure" in figure_mismatch([stored], [])
