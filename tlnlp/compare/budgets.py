"""Nested, seeded training sets for label budgets: for one seed the 8-shot set lies inside the 32-shot set."""

from __future__ import annotations

from typing import Any

from tlnlp.data.splits import sample_per_class

__all__ = ["ALL", "budget_sort_key", "budget_train_set", "effective_shots"]

#: The budget that trains on every training row.
ALL = "all"


def budget_train_set(train: Any, budget: int | str, seed: int) -> Any:
    """The training rows of one budget and seed.

    ``k`` rows of each class (fewer for classes that have fewer), drawn by :func:`tlnlp.data.sample_per_class`,
    whose per-class shuffles depend only on the seed and the class: the sets are nested in ``k`` for a seed.
    ``"all"`` is the whole training split (the seed then only changes initialisation and batch order).

    Args:
        train: The training ``datasets.Dataset`` (columns ``text``, ``label``).
        budget: Rows per class, or ``"all"``.
        seed: Seed of the draw.

    Returns:
        The selected rows, in their original order.
    """
    if budget == ALL:
        return train
    return sample_per_class(train, int(budget), seed)


def effective_shots(budget: int | str, cap: int) -> int:
    """Demonstrations per class of a few-shot cell: the budget, at most ``cap`` (prompts hold only a few)."""
    return cap if budget == ALL else min(int(budget), cap)


def budget_sort_key(budget: int | str) -> float:
    """Sort budgets numerically, ``"all"`` last."""
    return float("inf") if budget == ALL else float(budget)
