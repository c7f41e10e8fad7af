"""ULMFiT's defaults against full fine-tuning at the same learning rate, with 17 labels per class.

Bundled TREC-6 questions and the bundled MiniLM. Per seed, 17 training questions per class (102 in all) are drawn
from the train split with tlnlp's k-shot sampler (what ``--train_samples_per_class 17 --split_seed SEED`` keeps);
every run trains 8 epochs at learning rate 2e-4 with batch 16, tlnlp's defaults otherwise, and is scored on the
whole test split (538 questions).

Cells (accuracy mean and std over seeds, train seconds):
  full          --method full
  ulmfit        --method ulmfit (the transformer preset: per-block rate decay 0.95, slanted triangular schedule,
                every layer group thawed by 10% of the steps)
  ulmfit_paper  --method ulmfit --ulmfit_preset paper (factor 2.6 per layer group, one more group each epoch)

The target: ``ulmfit`` within 2 points of ``full`` (or better).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ulmfit_low_resource.py [--seeds 0 1 2] [--quick]

``--holdout N`` scores on N training questions outside the labelled draws of seeds 0-9 instead of the test split:
the way to compare settings (``--cell NAME="FLAGS"``) without reading a test label; the defaults of ``--method
ulmfit`` were checked that way. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import transformers  # noqa: E402
from transformers import PrinterCallback, set_seed  # noqa: E402

from benchmarks.machine import machine_info  # noqa: E402
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args  # noqa: E402
from tlnlp.data.splits import sample_per_class, seeded_subset  # noqa: E402
from tlnlp.methods import MethodArgs, apply_method  # noqa: E402
from tlnlp.tasks import TASKS  # noqa: E402
from tlnlp.training import build_trainer  # noqa: E402

DATASET, MODEL = "bundled:trec6", "bundled:minilm"
CELLS: dict[str, list[str]] = {
    "full": ["--method", "full"],
    "ulmfit": ["--method", "ulmfit"],
    "ulmfit_paper": ["--method", "ulmfit", "--ulmfit_preset", "paper"],
}
QUIET = ["--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
         "--per_device_eval_batch_size", "128", "--dataloader_num_workers", "0"]


def _splits(data: Any, per_class: int, seed: int, holdout: int | None) -> Any:
    """The seed's k-shot training rows, and the test split (or N held-out training rows outside every draw)."""
    train = data.splits["train"].add_column("_row", list(range(len(data.splits["train"]))))
    labelled = sample_per_class(train, per_class, seed)
    if holdout is None:
        scored = data.splits["test"]
    else:  # the rows no seed draws (k-shot draws are per seed): outside the union of seeds 0-9
        drawn = {row for s in range(10) for row in sample_per_class(train, per_class, s)["_row"]}
        rest = train.filter(lambda row: row["_row"] not in drawn)
        scored = seeded_subset(rest, holdout, 12345).remove_columns("_row")
    splits = datasets.DatasetDict({"train": labelled.remove_columns("_row"), "test": scored})
    return dataclasses.replace(data, splits=splits)


def _run(data: Any, flags: list[str], seed: int, out: Path) -> dict[str, float]:
    """Train one cell for one seed as the classification recipe would, then score the ``test`` split."""
    args = [*flags, "--model_name_or_path", MODEL, "--dataset_name", DATASET, "--output_dir", str(out),
            "--seed", str(seed), *QUIET]
    model_args, data_args, method_args, train_args = parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs,
                                                                args=args)
    task = TASKS.get("classification")
    set_seed(train_args.seed)
    model, tokenizer = task.load_model(model_args, data)
    prepared = apply_method(model, method_args)
    tokenized = task.tokenize(data, tokenizer, data_args)
    trainer = build_trainer(prepared, tokenizer, tokenized, train_args)
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    logits = trainer.predict(tokenized["test"]).predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == np.asarray(data.splits["test"]["label"])))
    return {"accuracy": accuracy, "train_seconds": round(seconds, 1)}


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    accs = [r["accuracy"] for r in runs]
    return {"mean": round(statistics.mean(accs), 4), "std": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
            "runs": [round(a, 4) for a in accs], "train_seconds_mean": round(statistics.mean(
                r["train_seconds"] for r in runs), 1), "flags": None}


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--cell", action="append", default=[], metavar='NAME="FLAGS"',
                        help="an extra cell: a name and its recipe flags, e.g. ulmfit_f25=\"--method ulmfit "
                             "--unfreeze_fraction 0.25\"")
    parser.add_argument("--per_class", type=int, default=17, help="labelled training questions per class")
    parser.add_argument("--epochs", type=float, default=8.0)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--holdout", type=int, default=None, metavar="N",
                        help="score on N training questions outside the draws of seeds 0-9, not on the test split")
    parser.add_argument("--quick", action="store_true", help="one epoch (a smoke test, not a result)")
    return parser.parse_args()


def main() -> None:
    """Run every cell for every seed and print the table; the last line is JSON."""
    opts = _options()
    cells = {name: CELLS[name] for name in opts.cells}
    for item in opts.cell:
        name, _, flags = item.partition("=")
        cells[name.strip()] = shlex.split(flags)
    shared = ["--learning_rate", str(opts.learning_rate), "--num_train_epochs", "1" if opts.quick else
              str(opts.epochs), "--per_device_train_batch_size", str(opts.batch_size)]
    logging.basicConfig(level=logging.WARNING)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    data = TASKS.get("classification").load_data(DataArgs(dataset_name=DATASET))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in cells}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="ulmfit_bench_") as tmp:
        for seed in opts.seeds:
            seed_data = _splits(data, opts.per_class, seed, opts.holdout)
            sizes = {split: len(rows) for split, rows in seed_data.splits.items()}
            for name, flags in cells.items():
                run = _run(seed_data, [*flags, *shared], seed, Path(tmp) / f"{name}_seed{seed}")
                results[name].append(run)
                print(f"seed {seed} {name:<16} accuracy {run['accuracy']:.4f} ({run['train_seconds']} s train)",
                      flush=True)
    _report(opts, cells, results, sizes)


def _report(opts: argparse.Namespace, cells: dict[str, list[str]], results: dict[str, list[dict[str, float]]],
            sizes: dict[str, int]) -> None:
    """Print the table and, last, the JSON line."""
    summary = {name: {**_summary(runs), "flags": " ".join(cells[name])} for name, runs in results.items()}
    scored = f"{opts.holdout} held-out training questions" if opts.holdout else f"test split ({sizes.get('test')})"
    epochs = 1 if opts.quick else opts.epochs
    print(f"\n{DATASET}, {MODEL}: {opts.per_class} labels per class, {epochs:g} epochs, learning rate "
          f"{opts.learning_rate:g}, batch {opts.batch_size}, seeds {opts.seeds}; scored on the {scored}")
    print(f"{'cell':<16} {'accuracy':>17} {'train s':>8}  flags")
    for name, row in summary.items():
        print(f"{name:<16} {row['mean']:>8.4f} ± {row['std']:.4f} {row['train_seconds_mean']:>8}  {row['flags']}")
    gap = None
    if "ulmfit" in summary and "full" in summary:
        gap = round(summary["ulmfit"]["mean"] - summary["full"]["mean"], 4)
        print(f"ulmfit - full: {gap:+.4f} (target: >= -0.02)")
    print(json.dumps({"benchmark": "ulmfit_low_resource", "dataset": DATASET, "model": MODEL,
                      "labels_per_class": opts.per_class, "epochs": epochs,
                      "learning_rate": opts.learning_rate, "batch_size": opts.batch_size, "seeds": opts.seeds,
                      "scored_on": "holdout" if opts.holdout else "test", "sizes": sizes, "quick": opts.quick,
                      "machine": machine_info(), "cells": summary, "ulmfit_minus_full": gap,
                      "target_met": None if gap is None else gap >= -0.02}))


if __name__ == "__main__":
    main()
