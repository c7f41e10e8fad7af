"""Parameter-efficient transfer against full fine-tuning: accuracy, trainable share, adapter size, memory, speed.

Bundled MiniLM on bundled ``movie_sentiment`` and ``trec6``; every method gets the same splits (split seed 42),
the same training rows, epochs, batch size and sequence length, and each method's usual learning rate. Each
cell runs the classification recipe in a process of its own, so the peak RSS of one does not hide another's.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/peft_efficiency.py [--train_samples 400 --epochs 2]

The last line printed is one JSON object: per dataset and method the test accuracy, trainable percent, adapter
(saved weights) MB, peak RSS MB and train samples/s, plus LoRA's gap to full fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("bundled:movie_sentiment", "bundled:trec6")
#: method -> its own flags: the learning rate usual for it (adapters train few weights and take larger steps)
METHODS: dict[str, list[str]] = {
    "full": ["--learning_rate", "1e-4"],
    "lora": ["--learning_rate", "2e-3", "--lora_r", "8", "--lora_alpha", "16"],
    "dora": ["--learning_rate", "2e-3", "--lora_r", "8", "--lora_alpha", "16"],
    "ia3": ["--learning_rate", "5e-3"],
    "prompt_tuning": ["--learning_rate", "3e-2", "--num_virtual_tokens", "20"],
}


def _cell(dataset: str, method: str, opts: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, str(ROOT / "recipes" / "classification.py"), "--model_name_or_path", "bundled:minilm",
           "--dataset_name", dataset, "--method", method, *METHODS[method], "--output_dir", str(out),
           "--max_train_samples", str(opts.train_samples), "--max_predict_samples", str(opts.test_samples),
           "--max_eval_samples", "64", "--max_seq_length", str(opts.max_seq_length),
           "--num_train_epochs", str(opts.epochs), "--per_device_train_batch_size", str(opts.batch_size),
           "--per_device_eval_batch_size", "128", "--warmup_steps", "0.06", "--weight_decay", "0.01",
           "--seed", str(opts.seed), "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
           "--logging_steps", "50", "--disable_tqdm", "true", "--dataloader_num_workers", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{dataset} {method} failed:\n{proc.stderr[-4000:]}")
    results = json.loads((out / "all_results.json").read_text())
    return {
        "accuracy": round(results["test_accuracy"], 4),
        "f1_macro": round(results["test_f1_macro"], 4),
        "trainable_parameters": results["train_trainable_parameters"],
        "trainable_percent": round(results["train_trainable_percent"], 4),
        "adapter_mb": round(results["train_saved_weights_mb"], 3),
        "peak_rss_mb": results["train_peak_rss_mb"],
        "train_samples_per_second": round(results["train_samples_per_second"], 2),
        "train_seconds": round(results["train_runtime"], 1),
    }


def main() -> None:
    """Run every method on every dataset and print the comparison; the last line is JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_samples", type=int, default=400)
    parser.add_argument("--test_samples", type=int, default=400)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_seq_length", type=int, default=48)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    opts = parser.parse_args()
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in opts.datasets:
            results[dataset] = {}
            for method in opts.methods:
                cell = _cell(dataset, method, opts, Path(tmp) / f"{dataset.split(':')[-1]}_{method}")
                results[dataset][method] = cell
                print(f"{dataset:>24} {method:>14}: {cell}", flush=True)
    summary = {}
    for dataset, cells in results.items():
        if "full" in cells and "lora" in cells:
            gap = round(100 * (cells["full"]["accuracy"] - cells["lora"]["accuracy"]), 2)
            summary[dataset] = {"lora_points_below_full": gap,
                                "lora_trainable_percent": cells["lora"]["trainable_percent"],
                                "target_met": gap <= 1.5 and cells["lora"]["trainable_percent"] < 2}
    print(json.dumps({
        "benchmark": "peft_efficiency", "model": "bundled:minilm", "train_samples": opts.train_samples,
        "test_samples": opts.test_samples, "epochs": opts.epochs, "batch_size": opts.batch_size,
        "max_seq_length": opts.max_seq_length, "seed": opts.seed,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "learning_rates": {m: METHODS[m][1] for m in opts.methods},
        "lora_vs_full": summary, "results": results,
    }))


if __name__ == "__main__":
    main()
