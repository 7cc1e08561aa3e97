"""hooks/notebook_pages.py, part 6: figures leave the page's HTML for files beside it."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from hooks.notebook_pages import figures_as_files, png_size


def png(width: int, height: int, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def data_img(data: bytes, kind: str = "png", alt: str = "Heads") -> str:
    return f'<img alt="{alt}" class="" src="data:image/{kind};base64,{base64.b64encode(data).decode()}"/>'


def test_a_figure_becomes_a_lazy_file_with_its_size(tmp_path):
    figure = png(30, 20)
    html = f"<p>before</p>{data_img(figure)}<p>after</p>"
    out = figures_as_files(html, tmp_path / "page")
    files = list((tmp_path / "page").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == figure
    name = files[0].name
    assert name.startswith("figure-") and name.endswith(".png")
    assert out == (
        f'<p>before</p><img alt="Heads" class="" width="30" height="20" src="{name}" '
        'loading="lazy" decoding="async"><p>after</p>'
    )
    assert "data:" not in out


def test_figures_are_named_by_their_content(tmp_path):
    one, other = png(4, 4, "red"), png(4, 4, "blue")
    out = figures_as_files(data_img(one) + data_img(other) + data_img(one), tmp_path)
    assert len(list(tmp_path.iterdir())) == 2, "two different figures, two files"
    names = [part.split('"')[0] for part in out.split('src="')[1:]]
    assert names[0] == names[2] != names[1]


def test_a_figure_keeps_a_size_it_was_given(tmp_path):
    html = data_img(png(8, 6)).replace("<img ", '<img width="4" ')
    out = figures_as_files(html, tmp_path)
    assert out.count("width=") == 1 and 'width="4"' in out and "height=" not in out


def test_other_image_types_become_files_without_a_size(tmp_path):
    out = io.BytesIO()
    Image.new("RGB", (5, 5)).save(out, format="JPEG")
    html = figures_as_files(data_img(out.getvalue(), kind="jpeg"), tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".jpg"]
    assert "width=" not in html and 'loading="lazy"' in html


def test_an_unknown_image_type_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="image/bmp"):
        figures_as_files(data_img(b"BM....", kind="bmp"), tmp_path)


def test_html_without_data_images_is_left_as_it_is(tmp_path):
    html = '<img alt="logo" src="../assets/logo.svg"><p>data:image/png;base64,AAAA</p>'
    assert figures_as_files(html, tmp_path / "none") == html
    assert not (tmp_path / "none").exists()


def test_png_size_reads_the_header_and_refuses_what_is_no_png():
    assert png_size(png(123, 45)) == (123, 45)
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))
