"""Fit a linear head on sentence embeddings: logistic regression, a torch linear layer, or one anchored at a prior.

Without a prior the ``logistic`` head is scikit-learn's ``LogisticRegression`` with its defaults (SetFit's head).
With a prior (the zero-shot prototypes, :class:`~tlnlp.methods.heads.options.LabelPrior`) the head starts at the
prototypes and minimises the summed cross-entropy plus ``(strength/2) * ||W - W_prior||^2``: a large strength keeps
the zero-shot classifier, a small one lets the labelled rows decide. ``auto`` picks the strength by stratified
k-fold cross-validation on the labelled rows alone (:func:`choose_prior_strength`). Given embeddings of unlabelled
texts, the head can then self-train on them (:mod:`tlnlp.methods.heads.self_training`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from tlnlp.methods.heads.cv import head_folds, logit_scores, mean_scores
from tlnlp.methods.heads.options import STRENGTH_GRID, HeadOptions, prior_strength, pseudo_per_class
from tlnlp.methods.heads.self_training import choose_pseudo_per_class, self_train

__all__ = ["FittedHead", "choose_prior_strength", "fit_head", "logit_scores"]

logger = logging.getLogger(__name__)


@dataclass
class FittedHead:
    """A trained linear head: ``logits = x @ weight.T + bias``.

    Attributes:
        weight: ``labels x dim``.
        bias: ``labels``.
        info: How it was fitted (head, init, the prior strength and its cross-validation scores), for results and
            the card.
    """

    weight: np.ndarray
    bias: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _check_rows(y: np.ndarray, num_labels: int) -> None:
    present = np.unique(y)
    if len(present) < 2:
        raise ValueError(f"The head needs labelled rows of at least two classes; the training rows hold only "
                         f"{len(present)} (of {num_labels}). Add rows (e.g. raise --train_samples_per_class).")


def _logistic(x: np.ndarray, y: np.ndarray, num_labels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's logistic regression (its defaults), as ``num_labels`` rows even for two classes."""
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(x, y)
    coef, intercept = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    if len(model.classes_) == 2 and coef.shape[0] == 1:  # one score for two classes: softmax of -z/2, z/2
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight, bias = np.zeros((num_labels, x.shape[1])), np.full(num_labels, -1e4)  # absent classes: never chosen
    weight[model.classes_], bias[model.classes_] = coef, intercept
    return weight, bias


def _anchored(x: np.ndarray, y: np.ndarray, prior: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """The minimiser (L-BFGS, float64) of summed cross-entropy + ``strength/2 * ||W - prior||^2``, from the prior.

    Strength 0 drops the prior: the penalty becomes ``1/2 * ||W||^2`` (scikit-learn's default logistic regression).
    """
    if strength == 0:
        prior, strength = np.zeros_like(prior), 1.0
    labels, dim = prior.shape
    onehot = np.eye(labels)[y]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weight, bias = theta[: labels * dim].reshape(labels, dim), theta[labels * dim:]
        logits = x @ weight.T + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        probs = np.exp(logits - log_norm)
        diff = weight - prior
        loss = float(-(onehot * (logits - log_norm)).sum() + 0.5 * strength * (diff**2).sum())
        residual = probs - onehot
        grad = np.concatenate([(residual.T @ x + strength * diff).ravel(), residual.sum(axis=0)])
        return loss, grad

    start = np.concatenate([prior.ravel(), np.zeros(labels)])
    found = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-8})
    return found.x[: labels * dim].reshape(labels, dim), found.x[labels * dim:]


def _linear(x: np.ndarray, y: np.ndarray, start: np.ndarray, options: HeadOptions,
            anchor: tuple[np.ndarray, float] | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A torch linear layer from ``start``, AdamW over shuffled batches of 16 (mean loss, prior penalty / rows)."""
    generator = torch.Generator().manual_seed(seed)
    features, gold = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    layer = torch.nn.Linear(x.shape[1], start.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(start, dtype=torch.float32))
        layer.bias.zero_()
    optimizer = torch.optim.AdamW(layer.parameters(), lr=options.head_learning_rate,
                                  weight_decay=0.0 if anchor is not None else 0.01)
    prior = torch.as_tensor(anchor[0], dtype=torch.float32) if anchor is not None else None
    for _ in range(options.head_epochs):
        for batch in torch.randperm(len(gold), generator=generator).split(16):
            loss = torch.nn.functional.cross_entropy(layer(features[batch]), gold[batch])
            if prior is not None:
                loss = loss + 0.5 * anchor[1] / len(gold) * ((layer.weight - prior) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()


def _scores(x: np.ndarray, y: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean log-loss of a head on rows."""
    return logit_scores(x.astype(np.float64) @ weight.T + bias, y)


def choose_prior_strength(x: np.ndarray, y: np.ndarray, prior: np.ndarray, seed: int = 0,
                          grid: tuple[float, ...] = STRENGTH_GRID) -> tuple[float, dict[str, Any]]:
    """The prior strength with the lowest held-out log-loss in stratified k-fold cross-validation (3 repeats).

    The grid holds 0, no pull towards the prior at all (plain logistic regression), so a misleading prior is
    dropped rather than merely weakened. k is 5, or the smallest class's row count when that is smaller
    (leave-one-per-class-out at 2 to 4 rows per class). Log-loss, a proper score, ranks strengths more steadily
    than accuracy on folds of a few rows; accuracy breaks ties. Only ``x``/``y`` are read: the rows of the
    labelled budget.

    Returns:
        The strength, and a record of the search (``folds``, per-strength ``cv_accuracy`` and ``cv_log_loss``).
    """
    folds, splits = head_folds(x, y, seed)
    if not splits:
        logger.warning("head_prior_strength auto: a class has one labelled row, too few to cross-validate; using 1.")
        return 1.0, {"folds": 0, "reason": "a class has a single labelled row"}
    table: dict[float, tuple[float, float]] = {}
    for strength in grid:
        found = []
        for train, held in splits:
            weight, bias = _anchored(x[train], y[train], prior, strength)
            found.append(_scores(x[held], y[held], weight, bias))
        table[strength] = mean_scores(found)
    best = min(grid, key=lambda s: (table[s][1], -table[s][0]))
    logger.info("head_prior_strength auto: %s (%d-fold log-loss %s)", best, folds,
                ", ".join(f"{s:g}: {table[s][1]:.3f}" for s in grid))
    return best, {"folds": folds, "cv_accuracy": {f"{s:g}": table[s][0] for s in grid},
                  "cv_log_loss": {f"{s:g}": table[s][1] for s in grid}}


def fit_head(x: np.ndarray, y: np.ndarray, num_labels: int, options: HeadOptions,
             prior: np.ndarray | None = None, seed: int = 0, pool: np.ndarray | None = None) -> FittedHead:
    """Fit the head that ``options`` describe on embeddings ``x`` and label ids ``y``.

    Args:
        x: ``rows x dim`` sentence embeddings (unit length).
        y: Label ids.
        num_labels: Number of labels (rows of the head).
        options: ``head`` (logistic or linear), ``head_prior_strength``, the linear head's rate and epochs, and
            ``self_training_per_class``.
        prior: ``labels x dim`` weights of the zero-shot head (``--head_init zero_shot``), or None.
        seed: Seed of the cross-validation folds and of the linear head's batches.
        pool: Embeddings of unlabelled texts for self-training (:mod:`tlnlp.methods.heads.self_training`), or None.

    Returns:
        The head and how it was fitted.

    Raises:
        ValueError: Fewer than two classes among the rows.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)
    _check_rows(y, num_labels)
    info: dict[str, Any] = {"head": options.head, "head_init": "zero_shot" if prior is not None else "random"}
    if prior is not None:
        strength = prior_strength(options.head_prior_strength)
        if strength is None:
            strength, info["prior_strength_search"] = choose_prior_strength(x, y, prior, seed)
        info["head_prior_strength"] = strength

    def fit(rows: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if prior is None and options.head == "logistic":
            return _logistic(rows, gold, num_labels, seed)
        if prior is None:
            return _linear(rows, gold, np.zeros((num_labels, rows.shape[1])), options, None, seed)
        if options.head == "logistic":
            return _anchored(rows, gold, prior, strength)
        return _linear(rows, gold, prior, options, (prior, strength) if strength > 0 else None, seed)

    weight, bias = fit(x, y)
    per_class = pseudo_per_class(options.self_training_per_class)
    if pool is not None and len(pool):  # a count of 0 records that the texts were there and left out
        pool = np.asarray(pool, dtype=np.float64)
        if per_class is None:
            per_class, info["self_training_search"] = choose_pseudo_per_class(x, y, pool, fit, seed)
        weight, bias, info["self_training"] = self_train(x, y, pool, fit, per_class, first=(weight, bias))
    return FittedHead(weight, bias, info)
