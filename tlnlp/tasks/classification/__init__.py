"""Sequence classification: data, tokenisation, offline metrics, predictions and the inference pipeline.

=========================  =====================================================================================
module                     what it holds
=========================  =====================================================================================
``data``                   :class:`TaskData` and ``load_classification_data`` (any source -> checked splits)
``tokenize``               ``tokenize_classification`` (truncation only; the collator pads)
``metrics``                offline metrics (numpy), the Trainer's ``compute_metrics``, ``ClassificationMetrics``
``predictions``            ``write_predictions`` (``predictions.jsonl``)
``evaluate``               scores of a run's splits (Trainer or label probabilities)
``pipeline``               the ``text-classification`` pipeline of a saved run
``task``                   :class:`ClassificationTask`, registered as ``"classification"``
=========================  =====================================================================================

Importing this package loads the light parts only (metrics and the task); the rest import ``datasets`` and
``transformers`` and are imported from their modules.
"""

from typing import Any

from tlnlp.tasks.classification import metrics as _metrics
from tlnlp.tasks.classification.metrics import (
    ComputeMetrics,
    classification_metrics,
    confusion_matrix,
    make_compute_metrics,
    predictions_from_logits,
)
from tlnlp.tasks.classification.task import ClassificationTask

__all__ = [
    "ClassificationMetrics",
    "ClassificationTask",
    "ComputeMetrics",
    "classification_metrics",
    "confusion_matrix",
    "make_compute_metrics",
    "predictions_from_logits",
]


def __getattr__(name: str) -> Any:
    """``ClassificationMetrics``, built on first access (it needs ``evaluate``; see the metrics module)."""
    if name == "ClassificationMetrics":
        return _metrics.ClassificationMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
