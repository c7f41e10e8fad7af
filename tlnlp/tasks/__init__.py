"""Task-specific pieces: classification metrics and prediction helpers.

``ClassificationMetrics`` (an offline ``evaluate`` metric) is resolved lazily so that importing this package
does not import ``evaluate`` or ``datasets``.
"""

from typing import Any

from tlnlp.tasks.classification import (
    ComputeMetrics,
    classification_metrics,
    confusion_matrix,
    make_compute_metrics,
    predictions_from_logits,
)

_LANGUAGE_MODELING = ("language_model_score", "perplexity", "pseudo_perplexity")

__all__ = [
    "ClassificationMetrics",
    "ComputeMetrics",
    "classification_metrics",
    "confusion_matrix",
    "make_compute_metrics",
    "predictions_from_logits",
    *_LANGUAGE_MODELING,
]


def __getattr__(name: str) -> Any:
    """Resolve ``ClassificationMetrics`` and the (pseudo-)perplexity functions (which import torch) on first access."""
    if name in _LANGUAGE_MODELING:
        from tlnlp.tasks import language_modeling

        return getattr(language_modeling, name)
    if name == "ClassificationMetrics":
        from tlnlp.tasks import classification

        return classification.ClassificationMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
