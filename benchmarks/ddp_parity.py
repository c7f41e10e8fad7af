"""One process against two (DDP over gloo on CPU): same global batch, same data, same model, in one run.

Launches ``recipes/classification.py`` twice through ``accelerate launch`` (``cpu_1proc.yaml`` with per-device
batch B, ``cpu_2proc.yaml`` with B/2) on bundled movie_sentiment with the bundled MiniLM, and compares the
reported training loss (its scale must not double under two processes) and test accuracy, over several seeds
(dropout draws differ between the launches, so single runs differ by seed noise).

    .venv/bin/python benchmarks/ddp_parity.py [--train_samples 2000] [--seeds 42 43 44]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(processes: int, out: Path, opts: argparse.Namespace, seed: int) -> dict:
    config = ROOT / "recipes" / "accelerate" / ("cpu_2proc.yaml" if processes == 2 else "cpu_1proc.yaml")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
           "--main_process_port", str(_free_port()), str(ROOT / "recipes" / "classification.py"),
           "--config", str(ROOT / "recipes" / "configs" / "classification" / "movie_minilm.yaml"),
           "--output_dir", str(out), "--max_train_samples", str(opts.train_samples),
           "--per_device_train_batch_size", str(opts.global_batch // processes), "--save_strategy", "no",
           "--report_to", "none", "--disable_tqdm", "true", "--seed", str(seed)]
    threads = max(1, (os.cpu_count() or 2) // processes)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        sys.exit(proc.stderr[-4000:])
    results = json.loads((out / "all_results.json").read_text())
    state = json.loads((out / "trainer_state.json").read_text())
    return {"wall_seconds": round(time.perf_counter() - start, 1), "global_step": state["global_step"],
            "train_loss": round(results["train_loss"], 4), "eval_loss": round(results["eval_loss"], 4),
            "test_accuracy": round(results["test_accuracy"], 4), "test_f1_macro": round(results["test_f1_macro"], 4)}


def main() -> None:
    """Run both launches and print the comparison; the last line is JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_samples", type=int, default=8056, help="default: the whole training split")
    parser.add_argument("--global_batch", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    opts = parser.parse_args()
    runs: dict[str, list[dict]] = {"one_process": [], "two_processes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in opts.seeds:
            for key, processes in (("one_process", 1), ("two_processes", 2)):
                result = _launch(processes, Path(tmp) / f"{key}_{seed}", opts, seed)
                runs[key].append({"seed": seed, **result})
                print(f"seed {seed}, {processes} process(es):", result, flush=True)

    def summary(key: str, metric: str) -> dict:
        values = np.array([r[metric] for r in runs[key]])
        return {"mean": round(float(values.mean()), 4), "std": round(float(values.std(ddof=1)), 4)
                if len(values) > 1 else 0.0}

    acc1, acc2 = summary("one_process", "test_accuracy"), summary("two_processes", "test_accuracy")
    loss1, loss2 = summary("one_process", "train_loss"), summary("two_processes", "train_loss")
    print(json.dumps({
        "benchmark": "ddp_parity", "train_samples": opts.train_samples, "global_batch": opts.global_batch,
        "seeds": opts.seeds, "one_process_accuracy": acc1, "two_processes_accuracy": acc2,
        "accuracy_difference_of_means": round(acc2["mean"] - acc1["mean"], 4),
        "train_loss_ratio_of_means": round(loss2["mean"] / loss1["mean"], 4),
        "runs": runs,
    }))


if __name__ == "__main__":
    main()
