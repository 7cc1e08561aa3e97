"""Chapter 12 says in words how much slower the Python tile loop is than SDPA; the words must be
what the benchmark recorded (docs/assets/benchmark/tiled-cpu.json, the table the page includes).
A new benchmark run that changes the ratios fails here until the chapter is reworded."""

from __future__ import annotations

import json

import pytest

from .helpers import DOCS

RECORD = DOCS / "assets" / "benchmark" / "tiled-cpu.json"
CHAPTERS = DOCS / "chapters"
# The phrases, with the lengths they speak about: blocks of 256 from T = 2048 on, blocks of 64 at
# every measured length.
THREE_TIMES = {
    "en": "from $T = 2048$ on the loop is about three times as slow as SDPA",
    "ru": "начиная с $T = 2048$ цикл примерно втрое медленнее SDPA",
}
SEVERAL_TIMES = {
    "en": "With blocks of 64 it is several times slower than SDPA",
    "ru": "С блоками по 64 он в несколько раз медленнее SDPA",
}


def ratios(candidate: str, from_T: int = 0) -> list[float]:
    results = json.loads(RECORD.read_text(encoding="utf-8"))["results"]
    return [row["time_over_sdpa"][candidate] for row in results if row["T"] >= from_T]


@pytest.mark.parametrize("language", ["ru", "en"])
def test_chapter_12_quotes_the_recorded_slowdown(language):
    text = " ".join((CHAPTERS / f"12-tiled-attention.{language}.md").read_text(encoding="utf-8").split())
    assert THREE_TIMES[language] in text and SEVERAL_TIMES[language] in text, (
        f"12-tiled-attention.{language}.md no longer says how slow the loop is in the words checked here"
    )
    long = ratios("tiled_256", from_T=2048)
    assert long and all(2.5 <= r < 3.5 for r in long), f"blocks of 256 over SDPA from T = 2048: {long}"
    several = ratios("tiled_64")
    assert several and all(r >= 4 for r in several), f"blocks of 64 over SDPA: {several}"
