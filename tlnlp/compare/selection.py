"""In-budget selection: a cell's choices made by cross-validation on its own k-shot rows, never on test labels.

With 8 labelled rows per class there is no validation split. A ladder cell that has a choice to make (a learning
rate and epochs, a head's regularisation, the pull towards the zero-shot prototypes) makes it by stratified k-fold
cross-validation on the budget's rows alone, from a small grid per strategy family declared here as data
(:data:`SEARCH_SPACES`), then trains once on every k-shot row with the choice and scores the test split once.

Every grid point is scored on the out-of-fold predictions of all the budget's rows pooled (folds of two or three
rows make a macro-F1 per fold meaningless), by the ladder's metric; ties go to the lower out-of-fold log-loss, then
to the earlier grid point (the first is the default). A family may choose one parameter after the others (its
``then``: the self-training count): first the best point with that parameter at its default, then the best of
that point's values of it, so that 16 rows choose among a few points at a time rather than among every product.
The record of a selection holds the choice, its CV score, the score of every grid point scored and the folds, and
goes into the cell's record, the table and the card.

``--selection`` sets how far it goes:

- ``none``: no selection (each method's own settings; ``--head_prior_strength auto`` still chooses inside);
- ``heads`` (the default): the choices that train no encoder: the head of feature extraction over frozen
  embeddings (encoded once per budget and seed), its pull towards the zero-shot prototypes and, for the
  self-training strategies, how many pseudo-labelled texts per class join the rows; zero-shot
  strategies are scored on the budget's rows (they train on none of them, so this is an honest in-budget score);
- ``cv``: every strategy family below, including the Trainer's learning rate and epochs, and SetFit's body
  epochs and head on bodies trained per fold; each trained cell then costs about ``folds x 3.5`` extra trainings
  (SetFit: ``folds x 7`` epochs of its body).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from tlnlp.methods.heads import PER_CLASS_GRID
from tlnlp.tasks import classification_metrics

__all__ = ["SEARCH_SPACES", "SELECTION_MODES", "cv_splits", "select", "selection_settings"]

#: ``--selection`` values, from none to the most expensive.
SELECTION_MODES = ("none", "heads", "cv")
#: Bumped when selection changes what a cell measures, so cached cells are recomputed.
SELECTION_VERSION = 1

_STRENGTHS = tuple({"head_prior_strength": s} for s in (1.0, 0.0, 0.01, 0.1, 10.0, 100.0, 1000.0))
_C_GRID = tuple({"C": c} for c in (1.0, 10.0, 100.0, 0.1))
#: SetFit's body epochs over its pairs (1: the library's default). Longer bodies cost a body per value and fold.
_BODY_EPOCHS = (1, 2, 4)
#: The self-training count, chosen after a family's other parameters (a grid's ``then``).
_COUNT = "self_training_per_class"


def _with_body_epochs(heads: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """Every head point on bodies of every length: the default body first, each body's head points in order."""
    return tuple({"setfit_num_epochs": epochs, **head} for epochs in _BODY_EPOCHS for head in heads)


def _with_self_training(heads: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """Every head point with every count of pseudo-labelled texts per class: no self-training (0) first."""
    return tuple({**head, "self_training_per_class": count} for count in PER_CLASS_GRID for head in heads)


#: Per strategy family: the grid (its first point is the default), the ``--selection`` modes that turn it on and
#: the repeats of the k-fold split (repeats are cheap only where no encoder trains per fold).
SEARCH_SPACES: dict[str, dict[str, Any]] = {
    # full, lora, ulmfit, frozen_backbone, from_scratch, plugins; sentence_fine_tuning: the Trainer's rate and
    # epochs as multiples of the ladder's (--learning_rates, epochs_for); a star around the default, not a product
    "trained": {"modes": ("cv",), "repeats": 1, "grid": (
        {"learning_rate_scale": 1.0, "epochs_scale": 1.0}, {"learning_rate_scale": 0.5, "epochs_scale": 1.0},
        {"learning_rate_scale": 2.0, "epochs_scale": 1.0}, {"learning_rate_scale": 1.0, "epochs_scale": 0.5})},
    # feature_extraction: the inverse L2 strength C of the logistic head (1: scikit-learn's default)
    "head": {"modes": ("heads", "cv"), "repeats": 3, "grid": _C_GRID},
    # feature_extraction_zero_shot_head: the pull towards the prototypes (0: none; 1 the default)
    "anchored_head": {"modes": ("heads", "cv"), "repeats": 3, "grid": _STRENGTHS},
    # feature_extraction(_zero_shot_head)_self_training: the same heads, each also self-trained on the cell's
    # unlabelled texts with 0, 8, 32 or 128 pseudo-labelled texts per class (each fold labels the texts with the
    # head fitted on its own training rows; the count is chosen after the head: ``then``)
    "self_trained_head": {"modes": ("heads", "cv"), "repeats": 3, "grid": _with_self_training(_C_GRID),
                          "then": _COUNT},
    "self_trained_anchored_head": {"modes": ("heads", "cv"), "repeats": 3, "grid": _with_self_training(_STRENGTHS),
                                   "then": _COUNT},
    # setfit / setfit_zero_shot_head: the same head grids on bodies trained on each fold's rows for 1, 2 or 4
    # epochs over the pairs (the heads of one body cost nothing more: every body length is tried with each)
    "setfit_head": {"modes": ("cv",), "repeats": 1, "grid": _with_body_epochs(_C_GRID)},
    "setfit_anchored_head": {"modes": ("cv",), "repeats": 1, "grid": _with_body_epochs(_STRENGTHS)},
    # setfit(_zero_shot_head)_self_training: those grids with every count of pseudo-labelled texts, each fold's
    # body labelling the unlabelled texts with the head fitted on its own training rows; the count is chosen after
    # the body's length and the head
    "setfit_self_trained_head": {"modes": ("cv",), "repeats": 1,
                                 "grid": _with_body_epochs(_with_self_training(_C_GRID)), "then": _COUNT},
    "setfit_self_trained_anchored_head": {"modes": ("cv",), "repeats": 1,
                                          "grid": _with_body_epochs(_with_self_training(_STRENGTHS)), "then": _COUNT},
}


def selection_settings(args: Any, family: str | None) -> dict[str, Any]:
    """The ``selection`` entry of a cell's configuration (hashed into its key), or ``{}`` when it selects nothing.

    Args:
        args: The compare settings (``selection``, ``selection_folds``, ``metric``).
        family: A key of :data:`SEARCH_SPACES`, or None for a strategy with no choice.
    """
    space = SEARCH_SPACES.get(family or "")
    mode = getattr(args, "selection", "none")
    if space is None or mode not in space["modes"]:
        return {}
    found = {"family": family, "grid": [dict(point) for point in space["grid"]], "repeats": space["repeats"],
             "max_folds": int(args.selection_folds), "metric": args.metric, "version": SELECTION_VERSION}
    if space.get("then"):
        found["then"] = space["then"]
    return {"selection": found}


def cv_splits(labels: Sequence[int] | np.ndarray, seed: int, max_folds: int = 5,
              repeats: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold splits of the budget's rows: ``(train positions, held-out positions)`` per fold.

    k is ``max_folds``, or the smallest class's row count when that is smaller (at 2 to 4 rows per class every
    fold holds out one row of the smallest class: leave-one-per-class-out), never below 2. A class with a single
    row cannot be both trained on and held out: then there is no split at all (``[]``) and the caller keeps its
    defaults. Positions index ``labels``: the folds are drawn from the budget's rows only.

    Args:
        labels: Label ids of the budget's rows.
        seed: Seed of the shuffle (the cell's seed).
        max_folds: The most folds (``--selection_folds``).
        repeats: Repeats of the k-fold split, each shuffled anew.

    Returns:
        The folds, ``k x repeats`` of them, or ``[]``.
    """
    y = np.asarray(labels)
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) < 2 or counts.min() < 2:
        return []
    k = int(min(max(2, max_folds), counts.min()))
    splitter: Any = (RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed) if repeats > 1
                     else StratifiedKFold(n_splits=k, shuffle=True, random_state=seed))
    return [(train, held) for train, held in splitter.split(np.zeros(len(y)), y)]


def _log_loss(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean negative log-likelihood of ``y`` under the softmax of ``scores`` (logits or log-probabilities)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())


def _stages(grid: Sequence[dict[str, Any]], then: str | None) -> list[Callable[[dict[str, Any]], list[int]]]:
    """The grid's positions scored at each stage, given the choice so far (one stage unless ``then`` is set).

    With ``then``, the first stage holds the points at ``then``'s default value (the first point's), and the second
    the points that differ from the first stage's choice in ``then`` alone.
    """
    if then is None:
        return [lambda chosen: list(range(len(grid)))]
    rest = [{k: v for k, v in point.items() if k != then} for point in grid]
    return [lambda chosen: [i for i, p in enumerate(grid) if p.get(then) == grid[0].get(then)],
            lambda chosen: [i for i, r in enumerate(rest) if r == {k: v for k, v in chosen.items() if k != then}]]


def select(grid: Sequence[dict[str, Any]], labels: Sequence[int] | np.ndarray,
           splits: list[tuple[np.ndarray, np.ndarray]],
           predict: Callable[[dict[str, Any], int, np.ndarray, np.ndarray], np.ndarray],
           metric: str = "accuracy", num_labels: int | None = None, then: str | None = None) -> dict[str, Any]:
    """Score grid points by cross-validation and choose one.

    Args:
        grid: Parameter dicts; the first is the default (kept on ties and when there are no splits).
        labels: Label ids of the budget's rows.
        splits: Folds from :func:`cv_splits` (positions into ``labels``).
        predict: ``predict(params, fold, train, held) -> scores`` (held rows x classes, logits or
            log-probabilities) of a model fitted on the ``train`` positions only.
        metric: ``accuracy`` or ``f1_macro``, of the pooled out-of-fold predictions.
        num_labels: Classes (default: ``max(labels) + 1``).
        then: A parameter chosen after the others rather than with them: first the best point at its default
            value, then the best of that point's values of ``then`` alone (fewer points to overfit few rows with).
            None: every point at once.

    Returns:
        ``chosen`` (the parameters), ``cv_score`` and ``cv_log_loss`` of the choice (None without splits),
        ``grid`` (the scores of every point scored), ``metric``, ``folds`` (k), ``repeats`` and ``rows``; ``then``
        when set.
    """
    y = np.asarray(labels, dtype=np.int64)
    n_labels = int(num_labels or int(y.max()) + 1)
    repeats = round(sum(len(held) for _, held in splits) / len(y)) if splits else 0  # each row held once a repeat
    found: dict[str, Any] = {"metric": metric, "folds": len(splits) // max(1, repeats), "repeats": repeats,
                             "rows": len(y), "chosen": dict(grid[0]), "cv_score": None, "cv_log_loss": None,
                             "grid": [], **({"then": then} if then else {})}
    if not splits:
        found["reason"] = "a class has a single labelled row: no cross-validation, the defaults stand"
        return found
    scored: dict[int, dict[str, Any]] = {}

    def score(index: int) -> dict[str, Any]:
        if index not in scored:
            held_all, scores_all = [], []
            for fold, (train, held) in enumerate(splits):
                held_all.append(held)
                scores_all.append(np.asarray(predict(dict(grid[index]), fold, train, held), dtype=np.float64))
            gold, scores = y[np.concatenate(held_all)], np.concatenate(scores_all)
            value = classification_metrics(gold, scores.argmax(axis=1), n_labels)[metric]
            scored[index] = {"params": dict(grid[index]), "cv_score": float(value),
                             "cv_log_loss": _log_loss(gold, scores)}
            found["grid"].append(scored[index])
        return scored[index]

    chosen = dict(grid[0])
    for stage in _stages(grid, then):  # max keeps the earliest of ties
        best = max((score(i) for i in stage(chosen)), key=lambda point: (point["cv_score"], -point["cv_log_loss"]))
        chosen = best["params"]
        found.update(chosen=dict(chosen), cv_score=best["cv_score"], cv_log_loss=best["cv_log_loss"])
    return found
