"""``python -m tlnlp compare``: the compare recipe as a command (same flags, same outputs)."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import transformers

from tlnlp.compare.args import CompareArgs
from tlnlp.compare.runner import run_compare
from tlnlp.compare.summary import format_forgetting, format_recommendation
from tlnlp.config import DataArgs, ModelArgs, parse_args
from tlnlp.errors import user_errors
from tlnlp.training import setup_logging

__all__ = ["compare_and_print", "compare_command"]


def compare_and_print(model_args: ModelArgs, data_args: DataArgs, compare_args: CompareArgs) -> dict[str, float]:
    """Run or resume the ladder and print its table; returns ``{strategy}/{budget}/{metric}_{mean,std}``."""
    setup_logging()
    datasets.disable_progress_bars()  # one progress bar: the cells'
    transformers.utils.logging.disable_progress_bar()
    result = run_compare(model_args, data_args, compare_args)
    print(f"\n{result.markdown}\n")
    forgetting = format_forgetting(result.rows)
    if forgetting:
        print(f"Forgetting check (general text, fixed LM head):\n{forgetting}\n")
    recommendation = format_recommendation(result.recommendation)
    if recommendation:
        print(f"Recommendation (in-budget scores only, selection {compare_args.selection}; regret against the "
              f"test-best):\n{recommendation}\n")
    for warning in result.warnings:
        print(f"WARNING: {warning}")
    print(f"{result.cells_run} cells run, {len(result.records) - result.cells_run} from the cache. Table "
          f"(compare_table.md/.csv/.json), card (README.md), plots and cells in {compare_args.output_dir}")
    metrics: dict[str, float] = {}
    for row in result.rows:
        for name in ("accuracy", "f1_macro"):
            for stat in ("mean", "std"):
                metrics[f"{row['strategy']}/{row['budget']}/{name}_{stat}"] = row[f"{name}_{stat}"]
    return metrics


def compare_command(argv: Sequence[str]) -> int:
    """Parse ``--config FILE`` and flags like ``recipes/compare.py`` and run; returns the exit status."""
    with user_errors():
        compare_and_print(*parse_args(ModelArgs, DataArgs, CompareArgs, args=list(argv)))
    return 0
