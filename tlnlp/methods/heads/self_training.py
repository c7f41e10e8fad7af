"""Self-training of a head over sentence embeddings: the head labels unlabelled texts, then fits again on both.

With a handful of labelled rows per class, a head over sentence embeddings is mostly decided by its start (the
zero-shot prototypes, where ``--head_init zero_shot``) and its few rows. Self-training (Yarowsky 1995; for
zero-shot classifiers, Gera et al. 2022, "Zero-Shot Text Classification with Self-Training") adds the unlabelled
texts a user almost always has: the fitted head labels them, the ``per_class`` texts it is surest of in each
predicted class join the labelled rows, and the head is fitted again on both, with the settings of the first fit
(the prior strength it chose is kept, not chosen again on the pseudo-labelled rows). One round.

``per_class`` is chosen by stratified k-fold cross-validation on the labelled rows alone
(:func:`choose_pseudo_per_class`): each fold self-trains from its own training rows and is scored on its held-out
labelled rows; 0 (no self-training) is always a candidate, so a pool the head cannot label well is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from tlnlp.methods.heads.cv import head_folds, logit_scores, mean_scores
from tlnlp.methods.heads.options import PER_CLASS_GRID

__all__ = ["choose_pseudo_per_class", "pseudo_label", "self_train"]

logger = logging.getLogger(__name__)

#: ``fit(x, y) -> (weight, bias)``: the head's fit at fixed settings.
Fit = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _probabilities(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = x @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    found = np.exp(logits)
    return found / found.sum(axis=1, keepdims=True)


def pseudo_label(pool: np.ndarray, weight: np.ndarray, bias: np.ndarray, per_class: int) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """The pool rows the head is surest of: up to ``per_class`` per predicted class, with the predicted labels.

    Returns:
        ``(rows, labels)``: indices into ``pool`` (most confident first within each class) and their labels.
    """
    probs = _probabilities(pool, weight, bias)
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    rows = []
    for label in range(weight.shape[0]):
        members = np.flatnonzero(predicted == label)
        rows.append(members[np.argsort(-confidence[members], kind="stable")[:per_class]])
    chosen = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)
    return chosen, predicted[chosen]


def self_train(x: np.ndarray, y: np.ndarray, pool: np.ndarray, fit: Fit, per_class: int,
               first: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One round of self-training: fit on ``x``/``y`` (or take ``first``), label the pool, fit on both.

    Returns:
        The head's ``(weight, bias)`` and a record: ``per_class``, ``pool_rows``, ``pseudo_rows`` and the pseudo
        labels' count per class.
    """
    weight, bias = first if first is not None else fit(x, y)
    record: dict[str, Any] = {"per_class": int(per_class), "pool_rows": len(pool), "pseudo_rows": 0}
    if per_class <= 0 or not len(pool):
        return weight, bias, record
    rows, labels = pseudo_label(pool, weight, bias, per_class)
    weight, bias = fit(np.vstack([x, pool[rows]]), np.concatenate([y, labels]))
    record.update(pseudo_rows=len(rows), pseudo_per_label=np.bincount(labels, minlength=weight.shape[0]).tolist())
    return weight, bias, record


def choose_pseudo_per_class(x: np.ndarray, y: np.ndarray, pool: np.ndarray, fit: Fit, seed: int = 0,
                            grid: tuple[int, ...] = PER_CLASS_GRID) -> tuple[int, dict[str, Any]]:
    """``per_class`` with the best held-out accuracy in stratified k-fold cross-validation (3 repeats).

    Each fold fits on its training rows, self-trains with the pool, and is scored on its held-out labelled rows;
    ties go to the lower log-loss, then to the smaller count. k is 5, or the smallest class's row count when that is
    smaller. Only ``x``/``y`` (the labelled budget) and the unlabelled ``pool`` are read.

    Returns:
        The count, and a record of the search (``folds``, per-count ``cv_accuracy`` and ``cv_log_loss``).
    """
    folds, splits = head_folds(x, y, seed)
    if not splits:
        logger.warning("self_training_per_class auto: a class has one labelled row, too few to cross-validate; "
                       "no self-training.")
        return 0, {"folds": 0, "reason": "a class has a single labelled row"}
    table: dict[int, list[tuple[float, float]]] = {count: [] for count in grid}
    for train, held in splits:
        first = fit(x[train], y[train])
        for count in grid:
            weight, bias, _ = self_train(x[train], y[train], pool, fit, count, first=first)
            table[count].append(logit_scores(x[held] @ weight.T + bias, y[held]))
    means = {count: mean_scores(found) for count, found in table.items()}
    best = min(grid, key=lambda count: (-means[count][0], means[count][1], count))
    logger.info("self_training_per_class auto: %d (%d-fold accuracy %s)", best, folds,
                ", ".join(f"{count}: {means[count][0]:.3f}" for count in grid))
    return best, {"folds": folds, "cv_accuracy": {str(c): means[c][0] for c in grid},
                  "cv_log_loss": {str(c): means[c][1] for c in grid}}
