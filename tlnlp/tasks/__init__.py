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

__all__ = [
    "ClassificationMetrics",
    "ComputeMetrics",
    "classification_metrics",
    "confusion_matrix",
    "make_compute_metrics",
    "predictions_from_logits",
]


def __getattr__(name: str) -> Any:
    """Resolve ``ClassificationMetrics`` on first access."""
    if name == "ClassificationMetrics":
        from tlnlp.tasks import classification

        return classification.ClassificationMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
