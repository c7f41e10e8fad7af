"""The transfer ladder: every strategy on the same splits and label budgets, with costs and warnings.

``run_compare`` runs strategies (zero-shot, few-shot prompting, every registered method: feature extraction,
adapters, ULMFiT, full fine-tuning, plugins; and the same architecture from random initialisation) at several
label budgets and seeds, caches each cell by a hash of its configuration, and writes a table (markdown, CSV,
JSON), a learning-curve plot and a cost-vs-accuracy plot, flagging negative transfer and measuring forgetting.
"""

from tlnlp.compare import baselines as _baselines  # noqa: F401, I001  (registers zero-shot and few-shot)
from tlnlp.compare import embedding_strategies as _embedding  # noqa: F401, I001  (feature extraction, SetFit)
from tlnlp.compare.args import CompareArgs
from tlnlp.compare.budgets import ALL, budget_train_set
from tlnlp.compare.cells import Cell, CellCache, cell_key
from tlnlp.compare.runner import CompareResult, plan_cells, run_compare
from tlnlp.compare.strategies import STRATEGIES, CellContext, Strategy, get_strategy, strategy_names, trained_strategy
from tlnlp.compare.summary import aggregate, flag_negative_transfer, format_markdown, write_tables

__all__ = [
    "ALL",
    "STRATEGIES",
    "Cell",
    "CellCache",
    "CellContext",
    "CompareArgs",
    "CompareResult",
    "Strategy",
    "aggregate",
    "budget_train_set",
    "cell_key",
    "flag_negative_transfer",
    "format_markdown",
    "get_strategy",
    "plan_cells",
    "run_compare",
    "strategy_names",
    "trained_strategy",
    "write_tables",
]
