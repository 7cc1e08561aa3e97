import json
import subprocess
import sys
from pathlib import Path

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
            assert all(value >= 0 for value in numbers.values())
        assert {"fwd_ours_over_sdpa", "fwd_bwd_ours_over_sdpa", "fwd_ours_over_nn_mha"} <= set(row["ratios"])
    table = (tmp_path / "results-cpu.md").read_text().splitlines()
    assert (
        table[0].startswith("| (B, T, C, H) |") and "fwd ours/SDPA" in table[0] and "MiB nn.MHA" in table[0]
    )
    assert len([line for line in table if line.startswith("| (")]) == 1 + len(data["results"])
