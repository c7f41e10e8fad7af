"""Extractive question answering: windows with offsets, n-best post-processing with null answers, SQuAD metrics.

Example:
    >>> from tlnlp.tasks.qa import squad_metrics
    >>> squad_metrics({"q1": "the Eiffel Tower"}, {"q1": ["Eiffel Tower"]})["exact"]
    100.0
"""

from tlnlp.tasks.qa.features import (
    NOT_CONTEXT,
    QA_EVAL_COLUMNS,
    check_window_settings,
    prepare_qa_features,
    tokenize_qa,
)
from tlnlp.tasks.qa.metrics import best_thresholds, compute_exact, compute_f1, normalize_answer, squad_metrics
from tlnlp.tasks.qa.pipeline import QuestionAnsweringPipeline
from tlnlp.tasks.qa.postprocess import QAPredictions, postprocess_qa_predictions, write_qa_predictions

__all__ = [
    "NOT_CONTEXT",
    "QAPredictions",
    "QuestionAnsweringPipeline",
    "QA_EVAL_COLUMNS",
    "best_thresholds",
    "check_window_settings",
    "compute_exact",
    "compute_f1",
    "normalize_answer",
    "postprocess_qa_predictions",
    "prepare_qa_features",
    "squad_metrics",
    "tokenize_qa",
    "write_qa_predictions",
]
