"""The full transfer ladder on bundled TREC-6: every strategy, budgets 8/32/128/all labels per class, 3 seeds.

Trained strategies and embedding zero-shot use the bundled MiniLM; few-shot prompting uses the bundled SmolLM2
(2 demonstrations per class, scored on a fixed, seeded subset of 120 test questions); entailment zero-shot uses an
entailment model trained here once from MiniLM on sms_spam, bbc_news and movie_sentiment pairs only (it never sees
TREC's labels). The from-scratch reference (same architecture, random initialisation) and zero-shot run in the same
ladder, on the same test split and k-shot sets, so every strategy is measured beside its baselines.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ladder_trec6.py [--output_dir runs/ladder_trec6]
        [--strategies ...] [--seeds 0 1 2] [--budgets 8 32 128 all] [--selection none|heads|cv]
        [--selection_folds K]

``--selection cv`` makes every cell's choices by k-fold cross-validation on its own k-shot rows (about
``folds x 3.5`` extra trainings per trained cell) and the ladder recommends a strategy per budget from those
scores alone, with its regret against the test-best; ``heads`` (the default) only where no encoder trains.

Every finished cell is cached under the output folder: a killed run resumes, and a later run with more strategies
computes only their cells. Epochs per budget: 3 epochs, raised to at least 60 optimisation steps for small budgets
(batch 16): 20 epochs at 8/class, 5 at 32/class, 3 at 128/class and on all 4,305 questions.

The last line printed is one JSON object: the table rows (mean and std over seeds), the flags and the run time.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

STRATEGIES = ["zero_shot_embeddings", "zero_shot_nli", "few_shot", "feature_extraction", "lora", "ulmfit", "full",
              "from_scratch"]
ENTAILMENT_SOURCES = ["bundled:sms_spam", "bundled:bbc_news", "bundled:movie_sentiment"]


def _entailment_model(folder: Path) -> str:
    """Train (once) an entailment model that has seen no TREC label; returns its folder."""
    from tlnlp.zeroshot import load_or_train_entailment_model

    load_or_train_entailment_model(folder, train_datasets=ENTAILMENT_SOURCES, model_name_or_path="bundled:minilm",
                                   device="cpu", max_samples_per_dataset=1500, num_train_epochs=1,
                                   per_device_train_batch_size=32, learning_rate=5e-5, max_seq_length=64)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--output_dir", default="runs/ladder_trec6")
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--budgets", nargs="+", default=["8", "32", "128", "all"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--prompt_test_samples", type=int, default=120)
    parser.add_argument("--selection", default="heads", choices=["none", "heads", "cv"])
    parser.add_argument("--selection_folds", type=int, default=5)
    opts = parser.parse_args()

    import datasets

    from tlnlp.compare import CompareArgs, run_compare
    from tlnlp.compare.summary import format_recommendation
    from tlnlp.config import DataArgs, ModelArgs
    from tlnlp.training import setup_logging

    setup_logging()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    start = time.perf_counter()
    out = Path(opts.output_dir)
    model_args = ModelArgs(model_name_or_path="bundled:minilm")
    data_args = DataArgs(dataset_name="bundled:trec6", max_seq_length=64)

    def ladder(strategies: list[str], nli: str | None) -> CompareArgs:
        return CompareArgs(output_dir=str(out), strategies=strategies, budgets=opts.budgets, seeds=opts.seeds,
                           num_train_epochs=3, min_train_steps=60, batch_size=16, fewshot_model="bundled:smollm2",
                           prompt_test_samples=opts.prompt_test_samples, fewshot_shots=2, nli_model=nli,
                           forgetting_samples=48, selection=opts.selection, selection_folds=opts.selection_folds)

    nli = None
    if "zero_shot_nli" in opts.strategies:  # the other cells first: training the entailment model takes a while
        run_compare(model_args, data_args, ladder([s for s in opts.strategies if s != "zero_shot_nli"], None))
        nli = _entailment_model(out / "entailment_model")
    result = run_compare(model_args, data_args, ladder(opts.strategies, nli))
    print(f"{result.markdown}\n\n{format_recommendation(result.recommendation)}")
    keep = ("strategy", "budget", "seeds", "n_train", "n_test", "accuracy_mean", "accuracy_std", "f1_macro_mean",
            "f1_macro_std", "cv_score_mean", "cv_score_std", "chosen", "train_time_s", "selection_time_s",
            "inference_ms_per_example", "trainable_parameters", "peak_memory_mb",
            "lm_measure", "lm_before", "lm_after", "lm_change_pct", "flags")
    rows = [{k: row[k] for k in keep if k in row} for row in result.rows]
    print(json.dumps({"benchmark": "ladder_trec6", "dataset": "bundled:trec6", "model": "bundled:minilm",
                      "prompt_model": "bundled:smollm2", "rows": rows, "warnings": result.warnings,
                      "selection": opts.selection, "recommendation": result.recommendation,
                      "cells": len(result.records), "cells_run": result.cells_run,
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
