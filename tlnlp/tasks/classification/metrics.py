"""Classification metrics computed with scikit-learn, and the Trainer's ``compute_metrics``.

Every figure comes from ``sklearn.metrics`` with ``labels=range(num_labels)`` and ``zero_division=0``, so a class
that is never predicted (or has no rows at all) counts in the macro averages with a score of 0. The same numbers
are shipped as a local ``evaluate`` module (:func:`tlnlp.tasks.load_metric`), which ``evaluate.load`` reads offline.

Single-label metrics (``y_true`` and ``y_pred`` are integer class ids):
``accuracy``, ``f1_macro``, ``f1_micro``, ``f1_weighted``, ``precision_macro``, ``recall_macro``, ``mcc``.

Multi-label metrics (``y_true`` and ``y_pred`` are ``n x num_labels`` 0/1 matrices):
``accuracy`` (exact-match ratio), ``f1_micro``, ``f1_macro``, ``precision_micro``, ``recall_micro``,
``precision_macro``, ``recall_macro``, ``hamming_loss``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from transformers import EvalPrediction

__all__ = [
    "ComputeMetrics",
    "classification_metrics",
    "confusion_matrix",
    "make_compute_metrics",
    "predictions_from_logits",
]

logger = logging.getLogger(__name__)

#: Label value that transformers uses for rows to ignore; such rows are dropped before scoring.
IGNORE_INDEX = -100


def _sklearn_metrics() -> ModuleType:
    """``sklearn.metrics``, imported on first use."""
    from sklearn import metrics  # deferred: scikit-learn loads scipy (over a second); tlnlp.tasks stays light

    return metrics


def _check_class_ids(values: np.ndarray, num_labels: int, name: str) -> np.ndarray:
    """Validate a 1-D array of integer class ids in ``[0, num_labels)`` and return it as int64."""
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D class ids for single-label metrics, got shape {values.shape}; "
                         "pass multi_label=True for 0/1 label matrices.")
    if values.size and not np.all(np.equal(np.mod(values, 1), 0)):
        raise ValueError(f"{name} must hold integer class ids, got non-integer values such as "
                         f"{values[np.mod(values, 1) != 0][0]!r}.")
    values = values.astype(np.int64)
    bad = values[(values < 0) | (values >= num_labels)]
    if bad.size:
        raise ValueError(f"{name} holds class id {int(bad[0])}, outside 0..{num_labels - 1} "
                         f"(num_labels={num_labels}).")
    return values


def _check_binary_matrix(values: np.ndarray, num_labels: int, name: str) -> np.ndarray:
    """Validate an ``n x num_labels`` 0/1 matrix and return it as int64."""
    if values.ndim != 2 or values.shape[1] != num_labels:
        raise ValueError(f"{name} must be an n x {num_labels} 0/1 matrix for multi-label metrics, "
                         f"got shape {values.shape}.")
    if not np.all((values == 0) | (values == 1)):
        raise ValueError(f"{name} must hold only 0 and 1 for multi-label metrics; threshold scores first "
                         "(see predictions_from_logits).")
    return values.astype(np.int64)


def _checked_pair(y_true: Any, y_pred: Any, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays of class ids, validated and of the same length."""
    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1, got {num_labels}.")
    true = _check_class_ids(np.asarray(y_true), num_labels, "y_true")
    pred = _check_class_ids(np.asarray(y_pred), num_labels, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {true.shape[0]} vs {pred.shape[0]}.")
    return true, pred


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     num_labels: int) -> np.ndarray:
    """Count matrix ``C[i, j]`` = rows with true class ``i`` predicted as class ``j``.

    Args:
        y_true: True class ids in ``[0, num_labels)``.
        y_pred: Predicted class ids in ``[0, num_labels)``, same length as ``y_true``.
        num_labels: Number of classes; classes absent from both arrays get zero rows and columns.

    Returns:
        A ``num_labels x num_labels`` int64 array (all zeros for empty input).

    Raises:
        ValueError: If the arrays differ in length or hold ids outside ``[0, num_labels)``.
    """
    true, pred = _checked_pair(y_true, y_pred, num_labels)
    if true.size == 0:
        return np.zeros((num_labels, num_labels), dtype=np.int64)
    return _sklearn_metrics().confusion_matrix(true, pred, labels=np.arange(num_labels)).astype(np.int64)


def _single_label_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> dict[str, float]:
    """Metrics for one class id per row."""
    true, pred = _checked_pair(y_true, y_pred, num_labels)
    skm = _sklearn_metrics()
    kw = {"labels": np.arange(num_labels), "zero_division": 0}
    with warnings.catch_warnings():  # one class in both arrays: mcc is 0, as documented
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        mcc = skm.matthews_corrcoef(true, pred)
    return {
        "accuracy": float(skm.accuracy_score(true, pred)),
        "f1_macro": float(skm.f1_score(true, pred, average="macro", **kw)),
        "f1_micro": float(skm.f1_score(true, pred, average="micro", **kw)),
        "f1_weighted": float(skm.f1_score(true, pred, average="weighted", **kw)),
        "precision_macro": float(skm.precision_score(true, pred, average="macro", **kw)),
        "recall_macro": float(skm.recall_score(true, pred, average="macro", **kw)),
        "mcc": float(mcc),
    }


def _multi_label_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> dict[str, float]:
    """Metrics for a 0/1 indicator matrix (one column per label)."""
    true = _check_binary_matrix(y_true, num_labels, "y_true")
    pred = _check_binary_matrix(y_pred, num_labels, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {true.shape} vs {pred.shape}.")
    skm = _sklearn_metrics()
    kw: dict[str, Any] = {"zero_division": 0}
    if num_labels == 1:  # sklearn reads an n x 1 matrix as binary class ids: score the positive class alone
        true, pred = true[:, 0], pred[:, 0]
        kw["labels"] = [1]

    def score(metric: Callable[..., float], average: str) -> float:
        return float(metric(true, pred, average=average, **kw))

    return {
        "accuracy": float(skm.accuracy_score(true, pred)),
        "f1_micro": score(skm.f1_score, "micro"),
        "f1_macro": score(skm.f1_score, "macro"),
        "precision_micro": score(skm.precision_score, "micro"),
        "recall_micro": score(skm.recall_score, "micro"),
        "precision_macro": score(skm.precision_score, "macro"),
        "recall_macro": score(skm.recall_score, "macro"),
        "hamming_loss": float(skm.hamming_loss(true, pred)),
    }


def classification_metrics(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray,
                           num_labels: int, multi_label: bool = False) -> dict[str, float]:
    """Score predictions against references with scikit-learn.

    Macro averages run over all ``num_labels`` classes: a class with neither true nor predicted rows scores 0
    (``labels=range(num_labels)``, ``zero_division=0``). ``mcc`` is the multiclass Matthews correlation
    (Gorodkin's R_K), 0 when undefined (a constant prediction or reference). With ``num_labels=1`` in
    multi-label mode, the single column is scored as one binary label (its positive class).

    Args:
        y_true: Reference class ids (single-label) or an ``n x num_labels`` 0/1 matrix (multi-label).
        y_pred: Predictions in the same form as ``y_true``.
        num_labels: Number of classes or labels.
        multi_label: Whether rows may carry several labels.

    Returns:
        A dict of metric name to float. Single-label: accuracy, f1_macro, f1_micro, f1_weighted,
        precision_macro, recall_macro, mcc. Multi-label: accuracy (exact match), f1_micro, f1_macro,
        precision_micro, recall_micro, precision_macro, recall_macro, hamming_loss.

    Raises:
        ValueError: On empty input, mismatched shapes, or values that are not valid labels.
    """
    true = np.asarray(y_true)
    pred = np.asarray(y_pred)
    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1, got {num_labels}.")
    if true.shape[0] == 0:
        raise ValueError("Cannot compute metrics on zero rows: y_true is empty.")
    if multi_label:
        return _multi_label_metrics(true, pred, num_labels)
    return _single_label_metrics(true, pred, num_labels)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    with np.errstate(under="ignore"):
        return np.exp(-np.logaddexp(0.0, -x))


def predictions_from_logits(logits: np.ndarray, multi_label: bool, threshold: float = 0.5) -> np.ndarray:
    """Turn model scores into predictions.

    Args:
        logits: ``n x num_labels`` scores. For single-label, a 1-D array (one logit per row, binary task) is
            thresholded like a multi-label column.
        multi_label: ``True``: ``sigmoid(logits) > threshold`` per label; ``False``: ``argmax`` per row.
        threshold: Probability above which a label is predicted (multi-label or a single logit).

    Returns:
        Class ids (shape ``n``) for single-label, a 0/1 int matrix (shape ``n x num_labels``) for multi-label.

    Raises:
        ValueError: If ``threshold`` is not in ``(0, 1)`` or the logits have an unexpected shape.
    """
    scores = np.asarray(logits, dtype=np.float64)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}.")
    if multi_label:
        if scores.ndim != 2:
            raise ValueError(f"Multi-label logits must be n x num_labels, got shape {scores.shape}.")
        return (_sigmoid(scores) > threshold).astype(np.int64)
    if scores.ndim == 1:
        return (_sigmoid(scores) > threshold).astype(np.int64)
    if scores.ndim != 2:
        raise ValueError(f"Single-label logits must be n x num_labels, got shape {scores.shape}.")
    return scores.argmax(axis=-1).astype(np.int64)


def _to_numpy(value: Any) -> np.ndarray:
    """Convert predictions or labels (numpy, torch tensors, a tuple of them: first item) to a numpy array."""
    if isinstance(value, tuple) and value and hasattr(value[0], "shape"):
        value = value[0]
    if hasattr(value, "detach"):  # torch tensor, possibly on an accelerator, possibly bfloat16
        value = value.detach()
        value = (value.float() if value.is_floating_point() else value).cpu().numpy()
    return np.asarray(value)


class ComputeMetrics:
    """``compute_metrics`` callable for :class:`transformers.Trainer`, built by :func:`make_compute_metrics`.

    Works with both evaluation modes of the Trainer: called once with the whole ``EvalPrediction``, or, with
    ``batch_eval_metrics=True``, once per batch with ``compute_result=False`` (batches are accumulated) and a
    final time with ``compute_result=True``.

    Attributes:
        num_labels: Number of classes or labels.
        multi_label: Whether rows may carry several labels.
        threshold: Sigmoid threshold for multi-label predictions.
    """

    def __init__(self, num_labels: int, multi_label: bool = False, threshold: float = 0.5) -> None:
        if num_labels < 1:
            raise ValueError(f"num_labels must be at least 1, got {num_labels}.")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}.")
        self.num_labels = num_labels
        self.multi_label = multi_label
        self.threshold = threshold
        self._preds: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def _predict_and_label(self, eval_pred: EvalPrediction | tuple[Any, Any]
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and references of one EvalPrediction, with ignored rows dropped."""
        logits, labels = eval_pred[0], eval_pred[1]  # EvalPrediction indexes as (predictions, label_ids, ...)
        preds = predictions_from_logits(_to_numpy(logits), self.multi_label, self.threshold)
        refs = _to_numpy(labels)
        if self.multi_label:
            return preds, np.rint(refs).astype(np.int64)
        refs = refs.reshape(-1).astype(np.int64)
        keep = refs != IGNORE_INDEX
        return preds[keep], refs[keep]

    def __call__(self, eval_pred: EvalPrediction | tuple[Any, Any],
                 compute_result: bool | None = None) -> dict[str, float]:
        """Score one evaluation (or accumulate one batch of it).

        Args:
            eval_pred: The Trainer's ``EvalPrediction`` (predictions may be a tuple; its first item is used)
                or a ``(logits, labels)`` pair.
            compute_result: ``None`` to score ``eval_pred`` alone; ``False`` to accumulate a batch and return
                ``{}``; ``True`` to accumulate the last batch and score everything accumulated.

        Returns:
            The metrics of :func:`classification_metrics`, or ``{}`` for an intermediate batch.
        """
        preds, refs = self._predict_and_label(eval_pred)
        if compute_result is None:
            return classification_metrics(refs, preds, self.num_labels, self.multi_label)
        self._preds.append(preds)
        self._labels.append(refs)
        if not compute_result:
            return {}
        preds, refs = np.concatenate(self._preds), np.concatenate(self._labels)
        self._preds, self._labels = [], []
        return classification_metrics(refs, preds, self.num_labels, self.multi_label)


def make_compute_metrics(num_labels: int, multi_label: bool = False,
                         threshold: float = 0.5) -> Callable[[EvalPrediction], dict[str, float]]:
    """Build a ``compute_metrics`` function for :class:`transformers.Trainer`.

    Args:
        num_labels: Number of classes or labels.
        multi_label: Whether rows may carry several labels (logits thresholded after a sigmoid).
        threshold: Sigmoid threshold for multi-label predictions.

    Returns:
        A callable taking an ``EvalPrediction`` and returning :func:`classification_metrics`' dict (the
        Trainer adds the ``eval_``/``test_`` prefix). Label rows equal to -100 are ignored in single-label
        mode.
    """
    return ComputeMetrics(num_labels, multi_label=multi_label, threshold=threshold)
