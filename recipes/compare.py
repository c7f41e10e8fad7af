"""The transfer ladder: every strategy on the same data, label budgets and seeds, in one table.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/compare.py \
        --config recipes/configs/compare/movie_minilm_quick.yaml

Also ``python -m tlnlp compare --config ...``. Writes ``compare_table.{md,csv,json}``, ``learning_curve.png``,
``cost_vs_accuracy.png`` and a per-cell cache (``cells/``) into ``--output_dir``; run the same command again to
resume a killed run or to add strategies (finished cells are read from the cache).
"""

from __future__ import annotations

from tlnlp.compare import CompareArgs
from tlnlp.compare.cli import compare_and_print
from tlnlp.config import DataArgs, ModelArgs, parse_args
from tlnlp.errors import user_errors

#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, DataArgs, CompareArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS: dict[str, object] = {}


def main(model_args: ModelArgs, data_args: DataArgs, compare_args: CompareArgs) -> dict[str, float]:
    """Run or resume the ladder and print the table; returns ``{strategy}/{budget}/{metric}_{mean,std}``."""
    return compare_and_print(model_args, data_args, compare_args)


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
