"""ULMFiT with 100 labels against full fine-tuning, feature extraction and training from scratch, in one run.

Bundled TREC-6 questions and the bundled MiniLM; every cell is scored on the same fixed test split, over several
seeds. Per seed, a stratified sample of 100 labelled training questions (and of 1,000 for the from-scratch
reference) is drawn; the remaining training questions are the unlabelled text for LM adaptation.

Cells (accuracy mean and std over seeds):
  ulmfit_lm@100          recipes/ulmfit.py: MLM adaptation on the unlabelled remainder, then ULMFiT fine-tuning
  ulmfit@100             recipes/classification.py --method ulmfit (no LM adaptation)
  full@100               --method full
  feature_extraction@100 --method feature_extraction
  from_scratch@100, @1000, @all   --method full --init_from_scratch (same architecture, random weights)

The paper's claim tested (Howard & Ruder 2018, TREC-6): with 100 labels, ULMFiT matches training from scratch on
10-20x more data.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ulmfit_low_resource.py [--seeds 0 1 2] [--quick]

Everything is written to a fresh temporary folder (nothing is reused between runs). The last line printed is one
JSON object. On a machine busy with other work, ``OMP_NUM_THREADS=1`` is several times faster (two threads wait on
each other when the cores are oversubscribed). Runs split over several processes (``--seeds``/``--cells`` with one
``--runs_file``) are summarised together with ``--summarize RUNS_FILE``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tqdm.auto import tqdm  # noqa: E402

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args  # noqa: E402
from tlnlp.data.splits import stratified_split_indices  # noqa: E402
from tlnlp.methods import MethodArgs  # noqa: E402
from tlnlp.tasks import load_task_data  # noqa: E402

COMMON = ["--model_name_or_path", "bundled:minilm", "--max_seq_length", "48", "--per_device_eval_batch_size", "128",
          "--max_eval_samples", "50",
          "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--logging_steps", "10",
          "--dataloader_num_workers", "0", "--disable_tqdm", "true"]
# cell -> (labels, recipe, flags); epochs are scaled down by --quick
CELLS: dict[str, tuple[str, str, list[str]]] = {
    "ulmfit_lm": ("100", "ulmfit", ["--method", "ulmfit", "--learning_rate", "4e-4", "--num_train_epochs", "8",
                                    "--per_device_train_batch_size", "16", "--blocks_per_group", "3",
                                    "--lm_learning_rate", "4e-4", "--lm_num_train_epochs", "1", "--lm_max_steps",
                                    "40", "--lm_head_warmup_steps", "15", "--perplexity_max_texts", "100"]),
    "ulmfit": ("100", "classification", ["--method", "ulmfit", "--learning_rate", "4e-4", "--num_train_epochs", "8",
                                         "--per_device_train_batch_size", "16", "--blocks_per_group", "3"]),
    "full": ("100", "classification", ["--method", "full", "--learning_rate", "1e-4", "--num_train_epochs", "8",
                                       "--per_device_train_batch_size", "16", "--warmup_steps", "10"]),
    "feature_extraction": ("100", "classification", ["--method", "feature_extraction", "--learning_rate", "2e-3",
                                                     "--num_train_epochs", "8", "--per_device_train_batch_size",
                                                     "16"]),
    "from_scratch@100": ("100", "classification", ["--method", "full", "--init_from_scratch", "--learning_rate",
                                                   "5e-4", "--num_train_epochs", "8", "--per_device_train_batch_size",
                                                   "16", "--warmup_steps", "10"]),
    "from_scratch@1000": ("1000", "classification", ["--method", "full", "--init_from_scratch", "--learning_rate",
                                                     "5e-4", "--num_train_epochs", "3",
                                                     "--per_device_train_batch_size", "32", "--warmup_steps", "20"]),
    "from_scratch@all": ("all", "classification", ["--method", "full", "--init_from_scratch", "--learning_rate",
                                                   "5e-4", "--num_train_epochs", "2", "--per_device_train_batch_size",
                                                   "32", "--warmup_steps", "40"]),
}


def _load_recipe(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the recipe look their module up
    spec.loader.exec_module(module)
    return module


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def _prepare(folder: Path, seed: int) -> tuple[dict[str, Path], dict[str, int]]:
    """Per seed: stratified 100 / 1,000 / all labelled training files, fixed validation/test, unlabelled text."""
    data = load_task_data(DataArgs(dataset_name="bundled:trec6"))
    rows = {split: [(t, data.labels[y]) for t, y in zip(ds["text"], ds["label"], strict=True)]
            for split, ds in data.splits.items()}
    train = rows["train"]
    strata = [label for _, label in train]
    files = {"validation": _write_csv(folder / "validation.csv", rows["validation"]),
             "test": _write_csv(folder / "test.csv", rows["test"])}
    sizes = {}
    for budget in ("100", "1000"):
        picked = stratified_split_indices(strata, {"labelled": int(budget) / len(train)}, seed)["labelled"]
        files[budget] = _write_csv(folder / f"train_{budget}_seed{seed}.csv", [train[i] for i in picked])
        sizes[budget] = len(picked)
        if budget == "100":
            taken = set(picked)
            remainder = [text for i, (text, _) in enumerate(train) if i not in taken]
            files["unlabelled"] = folder / f"unlabelled_seed{seed}.txt"
            files["unlabelled"].write_text("\n".join(remainder) + "\n", encoding="utf-8")
            sizes["unlabelled"] = len(remainder)
    files["all"] = _write_csv(folder / "train_all.csv", train)
    sizes["all"] = len(train)
    sizes["test"] = len(rows["test"])
    return files, sizes


def _quick(flags: list[str]) -> list[str]:
    """Smoke-test scale: one epoch per stage."""
    out = list(flags)
    for key in ("--num_train_epochs", "--lm_num_train_epochs"):
        if key in out:
            out[out.index(key) + 1] = "1"
    return out


def _run_cell(recipes: dict[str, Any], cell: str, files: dict[str, Path], seed: int, out: Path,
              quick: bool) -> dict[str, float]:
    budget, recipe, flags = CELLS[cell]
    args = [*COMMON, *(_quick(flags) if quick else flags), "--train_file", str(files[budget]), "--validation_file",
            str(files["validation"]), "--test_file", str(files["test"]), "--output_dir", str(out), "--seed", str(seed),
            "--split_seed", str(seed)]
    module = recipes[recipe]
    if recipe == "ulmfit":
        args += ["--lm_text_file", str(files["unlabelled"])]
        parsed = parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs, module.LmStageArgs, args=args)
    else:
        parsed = parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs, args=args)
    start = time.perf_counter()
    metrics = module.main(*parsed)
    result = {"test_accuracy": metrics["test_accuracy"], "test_f1_macro": metrics["test_f1_macro"],
              "seconds": round(time.perf_counter() - start, 1)}
    for key in ("lm_perplexity_before", "lm_perplexity_after"):
        if key in metrics:
            result[key] = metrics[key]
    return result


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    accs = [r["test_accuracy"] for r in runs]
    out = {"mean": round(statistics.mean(accs), 4), "std": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
           "n_seeds": len(accs), "runs": [round(a, 4) for a in accs],
           "seconds_mean": round(statistics.mean(r["seconds"] for r in runs), 1)}
    if "lm_perplexity_after" in runs[0]:
        out["pseudo_perplexity_before"] = [round(r["lm_perplexity_before"], 2) for r in runs]
        out["pseudo_perplexity_after"] = [round(r["lm_perplexity_after"], 2) for r in runs]
    return out


def main() -> None:
    """Run every cell for every seed and print the table; the last line is JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--quick", action="store_true", help="one epoch per stage (a smoke test, not a result)")
    parser.add_argument("--runs_file", type=Path, default=None,
                        help="also append each finished run to this JSON-lines file as it completes")
    parser.add_argument("--summarize", type=Path, default=None, metavar="RUNS_FILE",
                        help="only print the table and JSON of the runs recorded in RUNS_FILE")
    opts = parser.parse_args()
    if opts.summarize is not None:
        runs = [json.loads(line) for line in opts.summarize.read_text().splitlines() if line.strip()]
        by_cell: dict[str, list[dict[str, float]]] = {}
        for run in runs:
            by_cell.setdefault(run["cell"], []).append(run)
        _report({c: by_cell[c] for c in CELLS if c in by_cell}, sorted({r["seed"] for r in runs}), False, {})
        return
    logging.basicConfig(level=logging.WARNING)
    recipes = {name: _load_recipe(name) for name in ("classification", "ulmfit")}
    results: dict[str, list[dict[str, float]]] = {cell: [] for cell in opts.cells}
    with tempfile.TemporaryDirectory(prefix="ulmfit_bench_") as tmp:
        work = Path(tmp)
        bar = tqdm(total=len(opts.cells) * len(opts.seeds), desc="cells", unit="cell")
        for seed in opts.seeds:
            files, sizes = _prepare(work, seed)
            for cell in opts.cells:
                bar.set_postfix_str(f"seed {seed} {cell}")
                run = _run_cell(recipes, cell, files, seed, work / f"{cell}_seed{seed}", opts.quick)
                results[cell].append(run)
                if opts.runs_file is not None:
                    with opts.runs_file.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps({"seed": seed, "cell": cell, **run}) + "\n")
                tqdm.write(f"seed {seed} {cell:<20} test accuracy {run['test_accuracy']:.4f} ({run['seconds']} s)")
                bar.update()
        bar.close()
    _report(results, opts.seeds, opts.quick, sizes)


def _report(results: dict[str, list[dict[str, float]]], seeds: list[int], quick: bool, sizes: dict[str, int]) -> None:
    """Print the table and, last, the JSON line."""
    cells = {(c if "@" in c else f"{c}@100"): _summary(runs) for c, runs in results.items()}
    print(f"\n{'cell':<24} {'labels':>7} {'accuracy':>17} {'s/run':>7}")
    for name, summary in cells.items():
        labels = name.split("@")[1]
        print(f"{name:<24} {labels:>7} {summary['mean']:>9.4f} ± {summary['std']:.4f} {summary['seconds_mean']:>7}")
    claim = {}
    if "ulmfit_lm@100" in cells:
        for ref in ("from_scratch@1000", "from_scratch@all"):
            if ref in cells:
                claim[f"ulmfit_lm@100_minus_{ref}"] = round(cells["ulmfit_lm@100"]["mean"] - cells[ref]["mean"], 4)
    print(json.dumps({"benchmark": "ulmfit_low_resource", "dataset": "bundled:trec6", "model": "bundled:minilm",
                      "seeds": seeds, "quick": quick, "sizes": sizes, "cells": cells, "claim": claim}))


if __name__ == "__main__":
    main()
