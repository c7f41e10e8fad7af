"""Balanced, seeded k-shot demonstrations, and their order in the prompt."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tlnlp.data.splits import sample_per_class

__all__ = ["sample_demonstrations"]

logger = logging.getLogger(__name__)

_ROW = "__fewshot_row__"


def sample_demonstrations(train_rows: Any, shots: int, seed: int, order: int = 0) -> list[int]:
    """Row indices of ``shots`` demonstrations per class, in prompt order.

    The rows are those :func:`tlnlp.data.sample_per_class` picks for ``(shots, seed)``, i.e. the same rows a
    ``--train_samples_per_class shots`` run with that seed trains on, so they are balanced, deterministic and
    nested (the 1-shot demonstrations are among the 4-shot ones). ``order`` picks one seeded permutation of them;
    different orders of the same seed hold the same rows.

    Args:
        train_rows: A ``datasets.Dataset`` with a ``label`` column of class ids.
        shots: Demonstrations per class (0 gives none).
        seed: Which sample.
        order: Which permutation of the sample.

    Returns:
        Indices into ``train_rows``.

    Raises:
        ValueError: Negative ``shots`` or ``order``.
    """
    if shots < 0 or order < 0:
        raise ValueError(f"shots={shots!r} and order={order!r} must be non-negative.")
    if shots == 0:
        return []
    indexed = train_rows.add_column(_ROW, list(range(len(train_rows))))
    chosen = list(sample_per_class(indexed, shots, seed)[_ROW])
    permutation = np.random.default_rng([seed & 0xFFFFFFFF, order, 0x5EED]).permutation(len(chosen))
    return [int(chosen[i]) for i in permutation]
