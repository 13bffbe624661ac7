"""The benchmark scripts run end to end at a tiny size (their figures are not checked:
speed is measured by running them, never in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_query_benchmark_runs_and_checks_totals_against_a_scan(tmp_path: Path) -> None:
    out = _run("benchmarks/query.py", "--items", "1500", "--repeat", "2",
               "--insights-repeat", "1", "--seed", "11", "--cache", str(tmp_path))
    assert "whole-dataset insights from totals == by scanning: True" in out
    assert "insights, whole dataset (running totals)" in out


def test_ingest_benchmark_runs() -> None:
    out = _run("benchmarks/ingest.py", "--items", "300", "--boxes-per-item", "3")
    assert "boxes/s" in out and "items/s" in out


def test_startup_benchmark_runs_and_checks_eval_numbers_against_faster_coco_eval() -> None:
    out = _run("benchmarks/startup.py", "--images", "40", "--repeat", "1")
    assert "(agree)" in out
    for figure in ("import ocula", "ocula --help", "ocula eval / faster-coco-eval"):
        assert figure in out


def test_web_benchmark_runs_every_figure(tmp_path: Path) -> None:
    out = _run("benchmarks/web.py", "--items", "1500", "--repeat", "2", "--insights-repeat",
               "1", "--browser-repeat", "1", "--seed", "11", "--cache", str(tmp_path),
               *([] if Path("/usr/bin/chromium").exists() else ["--no-browser"]))
    for figure in ("dataset page", "grid page", "item page", "insights, whole dataset",
                   "insights, slice of", "insights, query of", "thumbnail of a 640-px JPEG, cold",
                   "thumbnail of a 640-px JPEG, warm"):
        assert figure in out
    assert out.count("patches page, 100 tiles") >= 8  # each filter and sort, printed
    assert "PASS" in out or "MISS" in out


def test_dedup_benchmark_runs_and_checks_the_index_against_brute_force() -> None:
    out = _run("benchmarks/dedup.py", "--hashes", "2000", "--thresholds", "3,10",
               "--images", "3", "--catalog", "20")
    assert out.count("(agree)") == 2 and "images/s" in out
    assert "cold" in out and "(0 hashed)" in out


def test_commit_benchmark_runs_every_figure_and_checks_pycocotools() -> None:
    out = _run("benchmarks/commit.py", "--images", "200")
    for figure in ("commit():", "re-commit, unchanged", "re-commit, one label fix",
                   "metrics() kept, dataset", "metrics() kept, slice",
                   "metrics() at label version"):
        assert figure in out
    assert "max |ocula - pycocotools| over the 12 numbers = 0.0e+00" in out
    assert "pycocotools evaluate + accumulate + summarize, same data:" in out
