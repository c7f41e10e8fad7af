"""Extractive question answering: data, windows with offsets, n-best post-processing with null answers, metrics.

=========================  =====================================================================================
module                     what it holds
=========================  =====================================================================================
``data``                   :class:`~tlnlp.tasks.qa.data.QAData` and ``load_qa_data`` (SQuAD JSON, flat files, Hub)
``checks``                 row checks: ids, questions, contexts, answers whose offsets hold
``model``                  ``load_question_answerer`` and ``fix_peft_question_answering``
``features``               question + context -> windows with offsets and start/end labels
``postprocess``            windows' logits -> answers (n-best, null answers), ``write_qa_predictions``
``metrics``                SQuAD exact match and F1, best null thresholds
``evaluate``               answer, write and score a run's validation and test questions
``pipeline``               :class:`~tlnlp.tasks.qa.pipeline.QuestionAnsweringPipeline` for a saved run
``task``                   :class:`QuestionAnsweringTask`, registered as ``"question-answering"``
=========================  =====================================================================================

Importing this package loads the light parts only; ``data``, ``model``, ``evaluate`` and ``pipeline`` import
``datasets``/``transformers`` and are imported from their modules.

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
from tlnlp.tasks.qa.postprocess import QAPredictions, postprocess_qa_predictions, write_qa_predictions
from tlnlp.tasks.qa.task import QA_SETTINGS, QuestionAnsweringTask

__all__ = [
    "NOT_CONTEXT",
    "QAPredictions",
    "QA_EVAL_COLUMNS",
    "QA_SETTINGS",
    "QuestionAnsweringTask",
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
