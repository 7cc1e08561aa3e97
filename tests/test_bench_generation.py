import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_generation.py"


def test_quick_run_writes_speed_and_memory_tables(tmp_path):
    subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    data = json.loads((tmp_path / "generation-cpu.json").read_text())
    assert [row["new_tokens"] for row in data["speed"]] == [4, 8]
    table = (tmp_path / "generation-cpu.md").read_text()
    for row in data["speed"]:
        assert row["same_tokens"] and row["repeats"] == 1
        cached, plain = row["tokens_per_s_cache"], row["tokens_per_s_no_cache"]
        assert 0 < cached < float("inf") and 0 < plain < float("inf")
        assert row["speedup"] == pytest.approx(cached / plain)  # the ratio of the two rates, not another
        line = f"| {row['new_tokens']} | {cached:.1f} | {plain:.1f} | {row['speedup']:.1f}x | yes |"
        assert line in table.splitlines()
    assert [row["attention"] for row in data["memory"]] == ["MHA", "GQA", "MQA"]
    assert [row["H_kv"] for row in data["memory"]] == [8, 2, 1]
    for row in data["memory"]:
        assert (
            row["bytes_per_token_measured"] == row["bytes_per_token_formula"] == 2 * 2 * row["H_kv"] * 8 * 4
        )
    assert (
        table.startswith("| new tokens | tokens/s, cache |")
        and "| tiny (2, 8, 8) | MQA | 1 | 128 | 128 |" in table
    )
