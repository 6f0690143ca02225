"""The benchmarks still run: the driver, every workload on tiny sizes, one call each, with tflc
and NumPy only (the peers are never a test dependency), and every result agrees with NumPy."""

import json
import os
import subprocess
import sys

import pytest

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "benchmarks", "run.py")
WORKLOADS = ["train", "inference", "elementwise", "matmul", "compile_time"]


def smoke(impls: list[str], tmp_path) -> tuple[str, list[dict]]:
    results = tmp_path / "results.json"
    done = subprocess.run([sys.executable, RUN, "--smoke", "--impls", ",".join(impls),
                           "--json", str(results)], check=False, capture_output=True,
                          text=True,
                          env={**os.environ, "TFLC_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(results.read_text())


def check(report: str, records: list[dict], impls: list[str]) -> None:
    assert "failed" not in report and "✗" not in report, report
    for workload in WORKLOADS:
        assert f"## {workload}\n\n" in report
    ran = {(r["case"], r["impl"]) for r in records}
    assert {impl for _, impl in ran} == set(impls)
    assert all(r["seconds"] > 0 for r in records)
    assert all(r.get("agrees", True) for r in records), records


def test_every_workload_runs_with_numpy_and_tflc_numpy_backend(tmp_path):
    impls = ["tflc-numpy", "numpy"]
    report, records = smoke(impls, tmp_path)
    check(report, records, impls)
    assert "| mnist_relu | " in report  # a training table row
    assert "of NumPy copy's bandwidth" in report


@pytest.mark.slow
def test_every_workload_runs_with_the_llvm_backend(tmp_path):
    impls = ["tflc-llvm", "numpy"]
    report, records = smoke(impls, tmp_path)
    check(report, records, impls)
