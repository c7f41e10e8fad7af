"""Tasks: one folder and one registration each (classification, question answering, language modelling).

A task's folder holds everything it knows: data loading and validation, the model head, tokenisation, metrics,
post-processing, the predictions writer and the inference pipeline, behind one :class:`Task` registered in
:data:`TASKS`. :func:`load_task_data`, :func:`tlnlp.load_pipeline`, ``python -m tlnlp predict``, the model card
and the push find the task here and never name it.

The metrics also ship as local ``evaluate`` modules (:func:`metric_path`, :func:`load_metric`), and
:func:`evaluate_classification_pipeline` and :func:`evaluate_qa_pipeline` score any pipeline with
``evaluate``'s evaluators and those modules.

Importing this package also registers the tasks of installed packages (entry-point group ``tlnlp.tasks``). It is
light and changes no global state: no ``transformers``, ``datasets``, ``evaluate`` or ``sklearn`` until a
function needs them.
"""

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
    evaluate_classification_pipeline,
    make_compute_metrics,
    predictions_from_logits,
)
from tlnlp.tasks.language_modeling import LanguageModelingTask
from tlnlp.tasks.metric_modules import METRIC_MODULES, load_metric, metric_path
from tlnlp.tasks.qa import QuestionAnsweringTask
from tlnlp.tasks.qa.pipeline_eval import evaluate_qa_pipeline

load_task_plugins()  # tasks of installed packages (entry-point group "tlnlp.tasks"), after the built-in ones

__all__ = [
    "DEFAULT_TASK",
    "METRIC_MODULES",
    "TASKS",
    "TASK_ENTRY_POINT_GROUP",
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
    "evaluate_classification_pipeline",
    "evaluate_qa_pipeline",
    "load_metric",
    "load_task_data",
    "load_task_plugins",
    "make_compute_metrics",
    "metric_path",
    "pipeline_tag_for",
    "predictions_from_logits",
    "register_task",
    "run_setting",
    "task_for_architectures",
    "task_for_pipeline_tag",
]

