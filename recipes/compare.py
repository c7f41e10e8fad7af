"""The transfer ladder: every strategy on the same data, label budgets and seeds, in one table.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/compare.py \
        --config recipes/configs/compare/movie_minilm_quick.yaml

Also ``python -m tlnlp compare --config ...``. Writes ``compare_table.{md,csv,json}``, ``learning_curve.png``,
``cost_vs_accuracy.png`` and a per-cell cache (``cells/``) into ``--output_dir``; run the same command again to
resume a killed run or to add strategies (finished cells are read from the cache).
"""

from __future__ import annotations

import datasets
import transformers

from tlnlp.compare import CompareArgs, run_compare
from tlnlp.config import DataArgs, ModelArgs, parse_args
from tlnlp.errors import user_errors
from tlnlp.training import setup_logging


def main(model_args: ModelArgs, data_args: DataArgs, compare_args: CompareArgs) -> dict[str, float]:
    """Run or resume the ladder, print the table; returns ``{strategy}/{budget}/{metric}_mean`` (and std)."""
    setup_logging()
    datasets.disable_progress_bars()  # one progress bar: the cells'
    transformers.utils.logging.disable_progress_bar()
    result = run_compare(model_args, data_args, compare_args)
    print(f"\n{result.markdown}\n")
    for warning in result.warnings:
        print(f"WARNING: {warning}")
    print(f"{result.cells_run} cells run, {len(result.records) - result.cells_run} from the cache. Table, plots and "
          f"cells in {compare_args.output_dir}")
    metrics: dict[str, float] = {}
    for row in result.rows:
        for name in ("accuracy", "f1_macro"):
            for stat in ("mean", "std"):
                metrics[f"{row['strategy']}/{row['budget']}/{name}_{stat}"] = row[f"{name}_{stat}"]
    return metrics


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(ModelArgs, DataArgs, CompareArgs))
