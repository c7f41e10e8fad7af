"""Transfer from other datasets to movie sentiment: staged, rehearsal, source-only, DANN and multi-task, measured.

Target: bundled movie_sentiment (the ladder's 500 test sentences). Sources: the three other sentiment corpora
(amazon_sentiment, tweet_sentiment, nyt_sentiment; same two labels) and one unrelated control (trec6: question
types, other labels). Target budgets 0, 8 and 32 labels per class, seeds 0-2, bundled MiniLM; every strategy on
the same target rows:

- ``full``: target-only fine-tuning (the baseline every route must beat);
- ``source_only:<source>``: the source-trained model with no target label (0 per class; same labels only);
- ``staged:<source>``: source first, then the target's k-shot rows; with the target's labels the cell also scores
  the source's test rows afterwards (source retention);
- ``staged_rehearsal:<source>``: the same with 64 source rows mixed into the target rows;
- ``dann:<source>`` and ``multitask:<source>`` when those strategies are registered (domain-adversarial training
  with 0 target labels; one encoder, one head per task).

A source may pool several corpora with ``+`` (``--sources amazon_sentiment+tweet_sentiment+nyt_sentiment``): one
source stage on rows drawn evenly from each, as many rows as one source gets.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/domain_transfer.py [--sources amazon_sentiment ...]
        [--control trec6|none] [--budgets 8 32] [--seeds 0 1 2] [--families staged staged_rehearsal source_only]
        [--source_samples 2000] [--source_epochs 1] [--source_patience 0] [--extra_strategies ...]
        [--output_dir runs/domain_transfer]

Every finished cell (and every source model) is cached under the output folder: a killed run resumes. The last
line printed is one JSON object: per strategy and budget the target accuracy (mean and std over seeds), the
source accuracy before and after (retention), negative-transfer flags against ``full`` at the same budget, train
seconds, the settings and the run time.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from typing import Any

SOURCES = ["amazon_sentiment", "tweet_sentiment", "nyt_sentiment"]
FAMILIES = ["source_only", "staged", "staged_rehearsal", "dann", "multitask"]
#: Families that need the target's labels in the source (the control has other labels).
SAME_LABELS_ONLY = ("source_only", "staged_rehearsal", "dann")


def _strategies(opts: argparse.Namespace) -> list[str]:
    from tlnlp.compare import get_strategy

    names = ["full"]
    control = [] if opts.control == "none" else [opts.control]
    for family in opts.families:
        for source in [*opts.sources, *control]:
            if source == opts.control and family in SAME_LABELS_ONLY:
                continue
            name = f"{family}:{source}"
            try:
                get_strategy(name)
            except Exception:  # noqa: BLE001 - a family this installation lacks is skipped, and said
                print(f"skipping {name}: no such strategy")
                continue
            names.append(name)
    return names


def _retention(records: list[dict[str, Any]], strategy: str, budget: Any) -> dict[str, Any]:
    import numpy as np

    found = [r for r in records if r.get("strategy") == strategy and r.get("budget") == budget
             and r.get("source_test_accuracy_after") is not None]
    if not found:
        return {}
    before = float(np.mean([r["source_test_accuracy"] for r in found]))
    after = float(np.mean([r["source_test_accuracy_after"] for r in found]))
    return {"source_before": round(before, 4), "source_after": round(after, 4),
            "source_change": round(after - before, 4)}


def _negative(rows: list[dict[str, Any]]) -> None:
    """Flag each route whose mean is below target-only ``full`` at the same budget by more than their spread."""
    full = {row["budget"]: row for row in rows if row["strategy"] == "full"}
    for row in rows:
        base = full.get(row["budget"])
        if row["strategy"] == "full" or base is None:
            continue
        gap = row["accuracy_mean"] - base["accuracy_mean"]
        spread = max(row.get("accuracy_std", 0.0), base.get("accuracy_std", 0.0))
        row["vs_target_only"] = round(gap, 4)
        row["negative_transfer"] = bool(gap < -spread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--output_dir", default="runs/domain_transfer")
    parser.add_argument("--sources", nargs="+", default=SOURCES)
    parser.add_argument("--control", default="trec6",
                        help="The unrelated source (other labels), run as the negative-transfer control; none: skip.")
    parser.add_argument("--families", nargs="+", default=FAMILIES)
    parser.add_argument("--budgets", nargs="+", default=["8", "32"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--extra_strategies", nargs="+", default=[],
                        help="More ladder strategies on the same rows, e.g. a vote of routes: "
                             "vote:source_only:nyt_sentiment,setfit_zero_shot_head_self_training.")
    parser.add_argument("--source_samples", type=int, default=2000)
    parser.add_argument("--source_epochs", type=float, default=1.0,
                        help="Epochs of full fine-tuning on each source (CompareArgs.transfer_source_epochs; "
                             "with --source_patience, the most it trains).")
    parser.add_argument("--source_patience", type=int, default=0,
                        help="Early stopping on the source's own validation rows (0: off; "
                             "CompareArgs.transfer_source_early_stopping_patience).")
    opts = parser.parse_args()

    import datasets
    import torch

    from tlnlp.compare import CompareArgs, run_compare
    from tlnlp.config import DataArgs, ModelArgs
    from tlnlp.training import setup_logging

    setup_logging()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    start = time.perf_counter()
    strategies = _strategies(opts)
    strategies += [name for name in opts.extra_strategies if name not in strategies]
    args = CompareArgs(output_dir=opts.output_dir, strategies=strategies, budgets=opts.budgets, seeds=opts.seeds,
                       num_train_epochs=3, min_train_steps=60, batch_size=16, check_forgetting=False,
                       transfer_source_samples=opts.source_samples, transfer_source_epochs=opts.source_epochs,
                       transfer_source_early_stopping_patience=opts.source_patience, overwrite_output_dir=True)
    data_args = DataArgs(dataset_name="bundled:movie_sentiment", max_seq_length=64, max_predict_samples=500)
    result = run_compare(ModelArgs(model_name_or_path="bundled:minilm"), data_args, args)
    print(f"\n{result.markdown}")
    keep = ("strategy", "budget", "seeds", "n_train", "accuracy_mean", "accuracy_std", "train_time_s")
    rows = [{k: row[k] for k in keep if k in row} for row in result.rows]
    for row in rows:
        row.update(_retention(result.records, row["strategy"], row["budget"]))
        best = [r["source_best_epoch"] for r in result.records if "source_best_epoch" in r
                and r.get("strategy") == row["strategy"] and r.get("budget") == row["budget"]]
        if best:  # --source_patience: the epoch each seed's source stage kept
            row["source_best_epochs"] = best
    _negative(rows)
    print(json.dumps({"benchmark": "domain_transfer", "model": "bundled:minilm", "target": "bundled:movie_sentiment",
                      "test_rows": 500, "sources": opts.sources, "control": opts.control, "budgets": opts.budgets,
                      "seeds": opts.seeds, "source_samples": opts.source_samples,
                      "source_epochs": opts.source_epochs, "source_patience": opts.source_patience, "rows": rows,
                      "machine": {"cpu": platform.processor() or platform.machine(),
                                  "threads": torch.get_num_threads()},
                      "wall_s": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
