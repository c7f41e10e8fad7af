"""Sequence classification: data, tokenisation, metrics, predictions and the inference pipeline.

=========================  =====================================================================================
module                     what it holds
=========================  =====================================================================================
``data``                   :class:`TaskData` and ``load_classification_data`` (any source -> checked splits)
``tokenize``               ``tokenize_classification`` (truncation only; the collator pads)
``metrics``                metrics (scikit-learn) and the Trainer's ``compute_metrics``
``predictions``            ``write_predictions`` (``predictions.jsonl``)
``evaluate``               scores of a run's splits (Trainer or label probabilities)
``pipeline``               the ``text-classification`` pipeline of a saved run
``pipeline_eval``          ``evaluate_classification_pipeline``: any pipeline, scored with ``evaluate.evaluator``
``task``                   :class:`ClassificationTask`, registered as ``"classification"``
=========================  =====================================================================================

Importing this package loads the light parts only (metrics, the task and the pipeline scorer, whose heavy
imports wait for their first call); the rest import ``datasets`` and ``transformers`` and are imported from their
modules. The metrics also ship as a local ``evaluate`` module: :func:`tlnlp.tasks.load_metric`.
"""

from tlnlp.tasks.classification.metrics import (
    ComputeMetrics,
    classification_metrics,
    confusion_matrix,
    make_compute_metrics,
    predictions_from_logits,
)
from tlnlp.tasks.classification.pipeline_eval import evaluate_classification_pipeline
from tlnlp.tasks.classification.task import ClassificationTask

__all__ = [
    "ClassificationTask",
    "ComputeMetrics",
    "classification_metrics",
    "confusion_matrix",
    "evaluate_classification_pipeline",
    "make_compute_metrics",
    "predictions_from_logits",
]

