"""Tasks: one folder and one registration each (classification, question answering, language modelling).

A task's folder holds everything it knows: data loading and validation, the model head, tokenisation, metrics,
post-processing, the predictions writer and the inference pipeline, behind one :class:`Task` registered in
:data:`TASKS`. :func:`load_task_data`, :func:`tlnlp.load_pipeline`, ``python -m tlnlp predict``, the model card
and the push find the task here and never name it.

Importing this package also registers the tasks of installed packages (entry-point group ``tlnlp.tasks``). It is
light and changes no global state: no ``transformers``, ``datasets`` or ``evaluate``
(``ClassificationMetrics``, an ``evaluate`` module, is built on first access).
"""

from typing import Any

from tlnlp.tasks import classification as _classification
from tlnlp.tasks.base import (
    DEFAULT_TASK,
    TASK_ENTRY_POINT_GROUP,
    TASKS,
    ConfusionFigure,
    Evaluation,
    SavedModel,
    Task,
    TaskInputError,
    load_task_data,
    load_task_plugins,
    pipeline_tag_for,
    register_task,
    run_setting,
    task_for_architectures,
    task_for_pipeline_tag,
)
from tlnlp.tasks.classification import (
    ClassificationTask,
    ComputeMetrics,
    classification_metrics,
    confusion_matrix,
    make_compute_metrics,
    predictions_from_logits,
)
from tlnlp.tasks.language_modeling import LanguageModelingTask
from tlnlp.tasks.qa import QuestionAnsweringTask

load_task_plugins()  # tasks of installed packages (entry-point group "tlnlp.tasks"), after the built-in ones

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "TASK_ENTRY_POINT_GROUP",
    "ClassificationMetrics",
    "ClassificationTask",
    "ComputeMetrics",
    "ConfusionFigure",
    "Evaluation",
    "LanguageModelingTask",
    "QuestionAnsweringTask",
    "SavedModel",
    "Task",
    "TaskInputError",
    "classification_metrics",
    "confusion_matrix",
    "load_task_data",
    "load_task_plugins",
    "make_compute_metrics",
    "pipeline_tag_for",
    "predictions_from_logits",
    "register_task",
    "run_setting",
    "task_for_architectures",
    "task_for_pipeline_tag",
]


def __getattr__(name: str) -> Any:
    """``ClassificationMetrics``, built on first access (it needs ``evaluate``)."""
    if name == "ClassificationMetrics":
        return _classification.ClassificationMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
