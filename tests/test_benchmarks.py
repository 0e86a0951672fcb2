"""The benchmark scripts keep running: the GPU script's logic on the CPU (tiny sizes), and the quick sections of
`make bench`, whose table must hold its rows with values in their possible ranges (how fast is not checked:
speeds are measured, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import BENCHMARKS


@pytest.mark.slow
def test_the_gpu_script_runs_its_logic_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py"), "--smoke-cpu", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for stage in ("stage 1", "stage 2"):
        assert results[stage]["float32"]["it_per_s"] > 0, results[stage]
        assert results[stage]["fastest"] in results[stage]
    assert 0 < results["degradation"]["share_of_stage1_iteration"] < 1
    assert set(results["slider_128"]) == {"same setting", "noise slider", "alpha slider"}


def test_the_gpu_script_without_cuda_says_so(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: benchmarks/gpu.py needs a CUDA device; torch sees none here"


@pytest.mark.slow
def test_make_bench_prints_its_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_all.py"), "--quick", "--size", "64", "--skip", "lightning", "variants"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| section | what | ratio or share | measured |"
    rows = {cells[1]: (cells[0], cells[2]) for cells in (line.split(" | ") for line in table[1:])}
    for kind in ("blur + noise", "blur + noise + JPEG"):
        section, ratio = rows[f"{kind}: device batch / CPU per image"]
        assert section == "| degradation" and 0 < float(ratio) < 100
        share = rows[f"{kind}: share of a stage-1 training step"][1]
        assert share.endswith("%") and 0 < float(share[:-1]) < 100
    for name in ("noise slider (new z)", "alpha slider (new blend)"):
        ratio = float(rows[f"64x64 {name} / forward with weights ready"][1])
        # a slider move costs about one forward pass, never many (no lower bound: a 1 ms pass timed over the quick
        # run's few rounds has been measured at 0.185 of another on a busy machine)
        assert 0 < ratio < 20
    assert 0 < float(rows["64x64 restoration, condition map / vector"][1]) < 20
    onnx = next(line for line in table if "ONNX Runtime / PyTorch" in line)
    assert "skipped" in onnx or float(onnx.split(" | ")[2]) > 0
    share = rows["64x64 restoration, float32 / float32 matmul rate"][1]
    assert share.endswith("%") and 0 < float(share[:-1]) < 200  # of the machine's own matmul rate
    bf16 = next(v for k, v in rows.items() if k.startswith("64x64 restoration, bf16"))[1]
    assert bf16 == "skipped" or 0 < float(bf16.rstrip("%")) < 200


def test_the_estimator_benchmark_times_both_readings(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_estimate.py"), "--side", "192", "--rounds", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(tile 96, by tile: ('noise',)), 192x192 photo" in proc.stdout
    for row in (
        "estimate, as the file reads",
        "estimate, whole image",
        "map, by windows",
        "map, whole image",
        "blur from the edges (blur 2)",
    ):
        assert row in proc.stdout
