"""Cross-validation on a head's labelled rows: the folds and the held-out scores that the head's searches share.

Both of the head's own choices (the prior strength, :func:`tlnlp.methods.heads.fit.choose_prior_strength`; the count
of self-training texts, :func:`tlnlp.methods.heads.self_training.choose_pseudo_per_class`) fold the labelled rows the
same way and score held-out rows by accuracy and log-loss.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold

__all__ = ["head_folds", "logit_scores", "mean_scores"]


def head_folds(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Stratified k-fold splits of the labelled rows, 3 repeats: ``(k, [(train, held), ...])``.

    k is 5, or the smallest class's row count when that is smaller (leave-one-per-class-out at 2 to 4 rows per
    class). Below 2 (a class with a single row) there are no splits: ``(k, [])``.
    """
    counts = np.bincount(y)
    folds = int(min(5, counts[counts > 0].min()))
    if folds < 2:
        return folds, []
    return folds, list(RepeatedStratifiedKFold(n_splits=folds, n_repeats=3, random_state=seed).split(x, y))


def logit_scores(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean log-loss of ``rows x labels`` logits against label ids ``y``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float((logits.argmax(axis=1) == y).mean()), float(-log_probs[np.arange(len(y)), y].mean())


def mean_scores(found: list[tuple[float, float]]) -> tuple[float, float]:
    """The mean accuracy and mean log-loss over folds."""
    return float(np.mean([a for a, _ in found])), float(np.mean([b for _, b in found]))
