"""The quick ladder with ``--executor local`` and 1 worker, then 2 workers: the same table, and the wall times.

``make demo``'s quick ladder (``recipes/configs/compare/movie_minilm_quick.yaml``: bundled MiniLM, bundled movie
sentiment, 9 strategies, 8 and 32 labels per class, one seed, 500 test sentences), run twice in this process into
two fresh output folders (no cell is shared):

  workers=1   the default: every cell in this process, one after another, on every core
  workers=2   two spawned processes, each pinned to half the cores (one core each on a 2-core machine)

With 1 worker a cell runs on all the cores; with 2 workers on half of them, so a matrix product can add its terms in
another order and a score can move in the last digits. The benchmark reports whether the two tables are equal, and
the largest difference of any accuracy. ``--cell_threads 1`` gives every cell one thread in both arms (the 1-worker
arm then leaves cores idle): the same arithmetic, so the same table to the last digit, and the wall time of
spreading cells over the cores.

    .venv/bin/python benchmarks/ladder_executor.py [--workers 2] [--cell_threads 1] [--output_dir runs/bench_executor]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402
import transformers  # noqa: E402

from benchmarks.machine import machine_info  # noqa: E402
from tlnlp.compare import CompareArgs, run_compare  # noqa: E402
from tlnlp.config import DataArgs, ModelArgs, parse_args  # noqa: E402

CONFIG = ROOT / "recipes" / "configs" / "compare" / "movie_minilm_quick.yaml"


def _ladder(out: Path, workers: int, threads: int | None) -> tuple[list[dict[str, Any]], float]:
    shutil.rmtree(out, ignore_errors=True)
    args = parse_args(ModelArgs, DataArgs, CompareArgs, args=[
        "--config", str(CONFIG), "--output_dir", str(out), "--workers", str(workers),
        *(["--cell_threads", str(threads)] if threads else [])])
    start = time.perf_counter()
    result = run_compare(*args)
    seconds = time.perf_counter() - start
    rows = [{"strategy": r["strategy"], "budget": r["budget"], "accuracy": r["accuracy_mean"],
             "f1_macro": r["f1_macro_mean"]} for r in result.rows]
    return rows, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cell_threads", type=int, default=None)
    parser.add_argument("--output_dir", default="runs/bench_executor")
    options = parser.parse_args()
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    out = Path(options.output_dir)
    one, one_s = _ladder(out / "workers-1", 1, options.cell_threads)
    many, many_s = _ladder(out / f"workers-{options.workers}", options.workers, options.cell_threads)
    pairs = list(zip(one, many, strict=True))
    gap = max(abs(a["accuracy"] - b["accuracy"]) for a, b in pairs)
    print(f"{'strategy':<36} {'k':>4} {'acc (1 worker)':>15} {f'acc ({options.workers} workers)':>16}")
    for a, b in pairs:
        print(f"{a['strategy']:<36} {a['budget']!s:>4} {a['accuracy']:>15.4f} {b['accuracy']:>16.4f}")
    print(f"1 worker {one_s:.1f} s, {options.workers} workers {many_s:.1f} s: {one_s / many_s:.2f}x")
    print(json.dumps({"benchmark": "ladder_executor", "config": CONFIG.name, "machine": machine_info(),
                      "workers": options.workers, "cell_threads": options.cell_threads,
                      "wall_s_1_worker": round(one_s, 1),
                      f"wall_s_{options.workers}_workers": round(many_s, 1), "speedup": round(one_s / many_s, 3),
                      "same_table": one == many, "max_accuracy_difference": gap, "rows_1_worker": one,
                      f"rows_{options.workers}_workers": many}))


if __name__ == "__main__":
    main()
