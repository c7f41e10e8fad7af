"""Deterministic data selection: deduplication, stratified splits, k-shot samples and seeded subsets.

Every function here is a pure function of its inputs and a seed (NumPy's ``default_rng``), so the same call
gives the same rows on every machine. Samples are *nested*: for one seed, the 8-shot sample is a subset of the
32-shot sample, and the first 100 rows of a seeded subset are a subset of the first 1,000.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "deduplicate",
    "normalise_whitespace",
    "sample_per_class",
    "seeded_subset",
    "split_overlap",
    "stratified_split_indices",
]

logger = logging.getLogger(__name__)


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def deduplicate(texts: Sequence[str], labels: Sequence[Hashable]) -> tuple[list[int], dict[str, int]]:
    """Keep the first copy of each text (after whitespace normalisation); drop texts whose copies disagree.

    Args:
        texts: One text per row.
        labels: One hashable label per row (a name, or a tuple of names for multi-label rows).

    Returns:
        The indices of the rows kept (in their original order), and counts: ``duplicates`` (extra copies
        dropped) and ``conflicting`` (texts dropped because their copies carry different labels).
    """
    seen: dict[str, set[Hashable]] = {}
    for text, label in zip(texts, labels, strict=True):
        seen.setdefault(normalise_whitespace(text), set()).add(label)
    conflicting = {t for t, found in seen.items() if len(found) > 1}
    kept: list[int] = []
    taken: set[str] = set()
    for i, text in enumerate(texts):
        key = normalise_whitespace(text)
        if key in conflicting or key in taken:
            continue
        taken.add(key)
        kept.append(i)
    dropped_conflicts = sum(1 for t in texts if normalise_whitespace(t) in conflicting)
    stats = {"duplicates": len(texts) - len(kept) - dropped_conflicts, "conflicting": len(conflicting)}
    return kept, stats


def _class_rng(seed: int, key: Hashable) -> np.random.Generator:
    """A generator that depends only on the seed and the class (not on the other classes or on k)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(repr(key).encode("utf-8"))])


def _quotas(sizes: dict[Hashable, int], fraction: float, target: int,
            room: dict[Hashable, int]) -> dict[Hashable, int]:
    """Rows per class for one held-out split: proportional, summing to ``target`` where ``room`` allows."""
    exact = {c: n * fraction for c, n in sizes.items()}
    quota = {c: min(math.floor(exact[c]), room[c]) for c in sizes}
    order = sorted(sizes, key=lambda c: (-(exact[c] - math.floor(exact[c])), str(c)))
    missing = target - sum(quota.values())
    while missing > 0:
        grown = False
        for c in order:
            if missing and quota[c] < room[c]:
                quota[c] += 1
                missing -= 1
                grown = True
        if not grown:
            break
    return quota


def stratified_split_indices(strata: Sequence[Hashable], fractions: dict[str, float],
                             seed: int) -> dict[str, list[int]]:
    """Split row indices into ``train`` and held-out splits, keeping class proportions.

    Each held-out split gets ``round(n * fraction)`` rows, spread over classes in proportion to their sizes
    (largest remainders first); every class keeps at least one training row, so a rare class never appears in
    validation or test without appearing in training.

    Args:
        strata: One class key per row.
        fractions: Held-out split name -> fraction of all rows (e.g. ``{"validation": 0.1, "test": 0.1}``).
        seed: Seed of the per-class shuffles.

    Returns:
        Split name -> row indices, ``train`` included, each in ascending order.
    """
    by_class: dict[Hashable, list[int]] = {}
    for i, key in enumerate(strata):
        by_class.setdefault(key, []).append(i)
    sizes = {c: len(rows) for c, rows in by_class.items()}
    room = {c: n - 1 for c, n in sizes.items()}
    quotas: dict[str, dict[Hashable, int]] = {}
    for split, fraction in fractions.items():
        quotas[split] = _quotas(sizes, fraction, round(len(strata) * fraction), room)
        room = {c: room[c] - quotas[split][c] for c in room}
    result: dict[str, list[int]] = {"train": [], **{s: [] for s in fractions}}
    for key, rows in by_class.items():
        shuffled = [rows[j] for j in _class_rng(seed, key).permutation(len(rows))]
        start = 0
        for split in fractions:
            result[split].extend(shuffled[start:start + quotas[split][key]])
            start += quotas[split][key]
        result["train"].extend(shuffled[start:])
    return {split: sorted(rows) for split, rows in result.items()}


def _stratum(label: Any) -> Hashable:
    """Class key of a row: the label, or for a multi-label row its first class id (-1 when it has none)."""
    if isinstance(label, (list, tuple)):
        return int(min(label)) if label else -1
    return int(label) if hasattr(label, "__index__") else label


def sample_per_class(dataset: Any, k: int, seed: int, label_column: str = "label") -> Any:
    """Stratified k-shot sample: ``k`` rows of every class, chosen by a seeded shuffle of each class.

    Deterministic for a seed, and nested: the rows chosen for ``k=8`` are among those chosen for ``k=32``
    (each class is shuffled by a generator that depends only on the seed and the class). Classes with fewer
    than ``k`` rows are kept whole, with a warning. Multi-label rows are grouped by their first class id.

    Args:
        dataset: A ``datasets.Dataset``.
        k: Rows per class (positive).
        seed: Seed of the shuffles.
        label_column: The column holding class ids.

    Returns:
        The sampled rows, in their original order.

    Raises:
        ValueError: ``k`` is not positive or ``label_column`` is missing.
    """
    if k < 1:
        raise ValueError(f"k={k!r} must be a positive number of examples per class.")
    if label_column not in dataset.column_names:
        raise ValueError(f"Column {label_column!r} not found; columns: {', '.join(dataset.column_names)}.")
    by_class: dict[Hashable, list[int]] = {}
    for i, label in enumerate(dataset[label_column]):
        by_class.setdefault(_stratum(label), []).append(i)
    chosen: list[int] = []
    small: dict[Hashable, int] = {}
    for key in sorted(by_class, key=str):
        rows = by_class[key]
        if len(rows) < k:
            small[key] = len(rows)
        order = _class_rng(seed, key).permutation(len(rows))[:k]
        chosen.extend(rows[j] for j in order)
    if small:
        logger.warning("Fewer than k=%d examples for %d class(es); all of their rows are kept: %s", k,
                       len(small), ", ".join(f"{key}: {n}" for key, n in small.items()))
    return dataset.select(sorted(chosen))


def seeded_subset(dataset: Any, n: int | None, seed: int) -> Any:
    """The first ``n`` rows of a seeded shuffle, returned in their original order (nested in ``n``).

    Args:
        dataset: A ``datasets.Dataset``.
        n: How many rows to keep; None (or at least the dataset's size) keeps all of them.
        seed: Seed of the shuffle.

    Returns:
        The selected rows.
    """
    if n is None or n >= len(dataset):
        return dataset
    order = np.random.default_rng(seed & 0xFFFFFFFF).permutation(len(dataset))[:n]
    return dataset.select(sorted(int(i) for i in order))


def split_overlap(splits: dict[str, Sequence[str]]) -> dict[tuple[str, str], int]:
    """Count the texts (after whitespace normalisation) shared by each pair of splits.

    Args:
        splits: Split name -> texts.

    Returns:
        ``(split_a, split_b) -> number of shared texts``, for the pairs that share any.
    """
    sets = {name: {normalise_whitespace(t) for t in texts} for name, texts in splits.items()}
    names = list(sets)
    shared: dict[tuple[str, str], int] = {}
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            count = len(sets[names[a]] & sets[names[b]])
            if count:
                shared[(names[a], names[b])] = count
    return shared
