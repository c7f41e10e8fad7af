"""tlnlp's classification metrics as a local ``evaluate`` module (loaded with ``evaluate.load(<this folder>)``).

The numbers are those of :func:`tlnlp.tasks.classification_metrics` (scikit-learn, macro averages over every
class, ``zero_division=0``), so a run's ``eval_*`` metrics, this module and ``evaluate.evaluator`` agree.
Nothing is downloaded: the module works with ``HF_HUB_OFFLINE=1`` and ``HF_EVALUATE_OFFLINE=1``.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np

from tlnlp.tasks.classification.metrics import classification_metrics

_DESCRIPTION = """\
Single-label: accuracy, f1_macro, f1_micro, f1_weighted, precision_macro, recall_macro, mcc.
Multi-label (config_name="multilabel"): accuracy (exact match), f1_micro, f1_macro, precision_micro,
recall_micro, precision_macro, recall_macro, hamming_loss. Computed with scikit-learn by tlnlp.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: Predicted class ids, or (multilabel) one 0/1 list per row.
    references: True class ids, or (multilabel) one 0/1 list per row.
    num_labels: Number of classes or labels; also accepted by evaluate.load. Default: the largest class id
        seen plus one (single-label), or the width of the rows (multilabel).
Returns:
    The dict of tlnlp.tasks.classification_metrics.
Examples:
    >>> metric = evaluate.load(tlnlp.tasks.metric_path("classification"), num_labels=3)
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 2])["accuracy"]
    0.6666666666666666
"""

_CONFIGS = ("default", "multilabel")


class TlnlpClassification(evaluate.Metric):
    """Accuracy, F1, precision, recall and MCC (or hamming loss) of class ids or 0/1 label rows.

    Args:
        num_labels: Number of classes or labels (a ``compute`` argument of the same name wins).
        **kwargs: The arguments of :class:`evaluate.Metric` (``config_name``: ``"default"`` or ``"multilabel"``).
    """

    def __init__(self, *args: Any, num_labels: int | None = None, **kwargs: Any) -> None:
        self.num_labels = num_labels
        super().__init__(*args, **kwargs)

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in _CONFIGS:
            raise ValueError(f"config_name={self.config_name!r} is not a configuration of tlnlp_classification; "
                             f"use one of: {', '.join(_CONFIGS)}.")
        value = datasets.Value("int64")
        if self.config_name == "multilabel":
            features = datasets.Features({"predictions": datasets.List(value), "references": datasets.List(value)})
        else:
            features = datasets.Features({"predictions": value, "references": value})
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
                                   features=features)

    def _compute(self, predictions: Any = None, references: Any = None,
                 num_labels: int | None = None) -> dict[str, float]:
        preds, refs = np.asarray(predictions), np.asarray(references)
        multi_label = self.config_name == "multilabel"
        if num_labels is None:
            num_labels = self.num_labels
        if num_labels is None:  # empty input: any width, classification_metrics reports the empty rows
            num_labels = _inferred_num_labels(refs, preds, multi_label) if refs.size else 1
        return classification_metrics(refs, preds, num_labels, multi_label=multi_label)


def _inferred_num_labels(references: np.ndarray, predictions: np.ndarray, multi_label: bool) -> int:
    """The width of the label rows (multilabel), or the largest class id seen plus one."""
    if multi_label:
        return int(references.shape[-1])
    return int(max(references.max(), predictions.max(initial=0))) + 1
