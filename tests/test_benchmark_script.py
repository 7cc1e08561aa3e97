import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_attention.py"


def test_quick_run_writes_json_and_markdown(tmp_path):
    subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], check=True, capture_output=True
    )
    data = json.loads((tmp_path / "results-cpu.json").read_text())
    assert {"torch", "cpu_model", "threads", "date"} <= set(data["machine"])
    assert data["results"]
    for row in data["results"]:
        assert set(row["shape"]) == {"B", "T", "C", "H"}
        assert set(row["candidates"]) == {"ours", "ours_explicit", "nn_mha", "sdpa", "seed_loop"}
        for numbers in row["candidates"].values():
            assert {
                "fwd_ms",
                "fwd_bwd_ms",
                "fwd_min_ms",
                "fwd_bwd_min_ms",
                "fwd_peak_mib",
                "fwd_bwd_peak_mib",
            } == set(numbers)
            times = [numbers[k] for k in ("fwd_ms", "fwd_bwd_ms", "fwd_min_ms", "fwd_bwd_min_ms")]
            assert all(0 < t < float("inf") for t in times), numbers  # each candidate was timed
            assert (
                numbers["fwd_min_ms"] <= numbers["fwd_ms"]
                and numbers["fwd_bwd_min_ms"] <= numbers["fwd_bwd_ms"]
            )
            assert numbers["fwd_peak_mib"] > 0 and numbers["fwd_bwd_peak_mib"] > 0  # the output at least
        c = row["candidates"]
        assert row["ratios"]["fwd_ours_over_sdpa"] == pytest.approx(
            c["ours"]["fwd_min_ms"] / c["sdpa"]["fwd_min_ms"]
        )
        assert {"fwd_ours_over_sdpa", "fwd_bwd_ours_over_sdpa", "fwd_ours_over_nn_mha"} <= set(row["ratios"])
    table = (tmp_path / "results-cpu.md").read_text().splitlines()
    assert (
        table[0].startswith("| (B, T, C, H) |") and "fwd ours/SDPA" in table[0] and "MiB nn.MHA" in table[0]
    )
    assert len([line for line in table if line.startswith("| (")]) == 1 + len(data["results"])
    sweep = data["memory_sweep"]
    assert [row["T"] for row in sweep] == sorted(row["T"] for row in sweep) and len(sweep) >= 2
    for row in sweep:
        assert set(row["fwd_peak_mib"]) == {"ours", "ours_explicit", "nn_mha", "sdpa", "seed_loop"}
        assert row["fwd_peak_mib"]["ours_explicit"] > 0
    assert any(line.startswith("| T (B = ") for line in table)


def test_full_memory_sweep_shows_linear_fused_and_quadratic_stored_weights():
    """The claim the benchmark footnote makes, checked on the CPU at the sweep's real sizes."""
    sys.path.insert(0, str(SCRIPT.parent))
    import bench_attention

    rows = bench_attention.memory_sweep(dict(bench_attention.MEMORY_SWEEP, T=[512, 1024]), "cpu")
    short, long = (row["fwd_peak_mib"] for row in rows)
    assert long["ours"] <= 2.2 * short["ours"]  # linear in T
    assert long["ours_explicit"] >= 3.5 * short["ours_explicit"]  # (B, H, T, T) stored: quadratic
    assert long["seed_loop"] >= 3.0 * short["seed_loop"]  # one head's (B, T, T) at a time
    assert short["seed_loop"] < short["ours"]  # short T: the fused (B, T, 3C) projection dominates
