"""Benchmark how fast Ocula starts: ``import ocula``, ``ocula --help`` and ``ocula eval``.

Each figure is the wall time of a fresh process (the median of several runs), since
that is what a user waits for:

* ``python -c "import ocula"``;
* ``ocula --help``, run the way the ``ocula`` console script runs it;
* ``ocula eval GT RES`` on the synthetic 5,000-image set of ``benchmarks/eval.py``,
  against a process that does the same with faster-coco-eval (``COCO(GT)``,
  ``loadRes(RES)``, ``COCOeval_faster`` evaluate / accumulate / summarize). The two
  alternate, so background load hits both alike, and their 12 numbers must agree.

    python benchmarks/startup.py                   # the three figures against their goals
    python benchmarks/startup.py --repeat 9        # more runs per figure
    python benchmarks/startup.py --src /tmp/old/src  # measure another checkout's code
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from eval import synthetic_coco  # noqa: E402

# Goals of issue 12: seconds for the first two, a ratio to faster-coco-eval for eval.
IMPORT_GOAL = 0.25
HELP_GOAL = 0.35
EVAL_RATIO_GOAL = 0.4
# faster-coco-eval is not bit-exact with pycocotools in general (benchmarks/eval.py).
STATS_ATOL = 1e-6

# What the ``ocula`` console script runs.
OCULA = "import sys; from ocula.cli.main import app; sys.exit(app(prog_name='ocula'))"
FASTER = """
import json, sys
from faster_coco_eval import COCO, COCOeval_faster
quiet = lambda *a, **k: None
gt = COCO(sys.argv[1], print_function=quiet)
dt = gt.loadRes(sys.argv[2])
ev = COCOeval_faster(gt, dt, "bbox", print_function=quiet)
ev.evaluate()
ev.accumulate()
ev.summarize()
print(json.dumps([float(v) for v in ev.stats[:12]]))
"""


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of one fresh process, and its stdout; a failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)[:200]} failed ({done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    return took, done.stdout


def _median(args: list[str], env: dict[str, str], repeat: int) -> float:
    return statistics.median(_run(args, env)[0] for _ in range(repeat))


def _line(name: str, value: float, goal: float, unit: str) -> str:
    verdict = "meets" if value <= goal else "MISSES"
    return f"  {name:<34}{value:9.3f} {unit:<10} goal <= {goal:g} {unit}: {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000,
                        help="images in the eval set (default 5000, as benchmarks/eval.py)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--src", type=Path, default=ROOT / "src",
                        help="the source folder whose ocula is measured (default: this one)")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "COLUMNS": "120"}
    env.pop("PYTHONSTARTUP", None)
    print(f"python {sys.version.split()[0]}, ocula from {args.src}, median of {args.repeat} "
          "fresh processes each")

    _run(["-c", "import ocula"], env)  # warm the file cache and the bytecode
    import_s = _median(["-c", "import ocula"], env, args.repeat)
    help_s = _median(["-c", OCULA, "--help"], env, args.repeat)

    dataset, results = synthetic_coco(args.images, seed=0)
    with tempfile.TemporaryDirectory(prefix="ocula-startup-") as tmp:
        gt, res, out = (str(Path(tmp) / name) for name in ("gt.json", "res.json", "out.json"))
        Path(gt).write_text(json.dumps(dataset), encoding="utf-8")
        Path(res).write_text(json.dumps(results), encoding="utf-8")
        print(f"eval set: {args.images} images, {len(dataset['annotations'])} ground-truth "
              f"boxes, {len(results)} results")
        # One untimed run each: the numbers, and a warm file cache for the timed runs.
        _run(["-c", OCULA, "eval", gt, res, "--json", out], env)
        ours = json.loads(Path(out).read_text(encoding="utf-8"))["stats"]
        theirs = json.loads(_run(["-c", FASTER, gt, res], env)[1].splitlines()[-1])
        ocula_s, faster_s = [], []
        for _ in range(args.repeat):
            ocula_s.append(_run(["-c", OCULA, "eval", gt, res], env)[0])
            faster_s.append(_run(["-c", FASTER, gt, res], env)[0])
    eval_s, fast_s = statistics.median(ocula_s), statistics.median(faster_s)

    ours_list = [float(v) for v in ours.values()]
    drift = max(abs(a - b) for a, b in zip(ours_list, theirs, strict=True))
    same = drift <= STATS_ATOL
    print(f"12 numbers: ocula eval vs faster-coco-eval, max |diff| = {drift:.3g} "
          f"({'agree' if same else 'DIFFER'})")
    print(f"  ocula eval {eval_s:.3f} s, faster-coco-eval {fast_s:.3f} s (whole processes)")
    print("figures:")
    print(_line("import ocula", import_s, IMPORT_GOAL, "s"))
    print(_line("ocula --help", help_s, HELP_GOAL, "s"))
    print(_line("ocula eval / faster-coco-eval", eval_s / fast_s, EVAL_RATIO_GOAL, "x"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
