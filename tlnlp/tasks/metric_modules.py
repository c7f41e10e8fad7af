"""tlnlp's metrics as local ``evaluate`` modules: where they are, and ``evaluate.load`` on them.

The modules are plain scripts shipped in the package (``tlnlp/evaluate_modules/<module>/<module>.py``), so
``evaluate.load(metric_path(name))`` reads them from disk, offline, from any working directory, and returns the
same numbers as :func:`~tlnlp.tasks.classification_metrics` and :func:`~tlnlp.tasks.qa.squad_metrics`.

- ``classification``: class ids, or 0/1 rows with ``config_name="multilabel"``; ``num_labels`` at load or
  compute time (default: inferred from the data).
- ``squad``: predictions ``{"id", "prediction_text"}`` (with ``config_name="squad_v2"``, also
  ``"no_answer_probability"``) and references ``{"id", "answers": {"text", "answer_start"}}``.

Example:
    >>> import evaluate
    >>> from tlnlp.tasks import metric_path
    >>> metric = evaluate.load(metric_path("classification"), num_labels=3)  # doctest: +SKIP
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 2])["f1_macro"]  # doctest: +SKIP
    0.3333333333333333
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets
    import evaluate

__all__ = [
    "METRIC_MODULES",
    "TIMING_KEYS",
    "accept_ready_pipelines",
    "as_dataset",
    "check_columns",
    "load_metric",
    "metric_path",
]

#: Metric name -> folder (and script) name of its ``evaluate`` module under ``tlnlp/evaluate_modules``.
METRIC_MODULES = {"classification": "tlnlp_classification", "squad": "tlnlp_squad"}

_MODULES_DIR = Path(__file__).resolve().parent.parent / "evaluate_modules"


def metric_path(name: str) -> str:
    """The folder of one of tlnlp's ``evaluate`` modules, for ``evaluate.load``.

    Args:
        name: ``"classification"`` or ``"squad"`` (see :data:`METRIC_MODULES`).

    Returns:
        The absolute path of the module's folder (it holds ``<folder name>.py``).

    Raises:
        ValueError: An unknown name (the message suggests the closest one and lists them all).
        FileNotFoundError: The module's script is missing from the installation.
    """
    if name not in METRIC_MODULES:
        close = difflib.get_close_matches(name, list(METRIC_MODULES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown metric module {name!r}.{hint} Available: {', '.join(METRIC_MODULES)}.")
    folder = _MODULES_DIR / METRIC_MODULES[name]
    if not (folder / f"{folder.name}.py").is_file():
        raise FileNotFoundError(f"{folder / folder.name}.py is missing: reinstall tlnlp (the evaluate modules ship "
                                "as package data).")
    return str(folder)


def load_metric(name: str, config_name: str | None = None, **kwargs: Any) -> evaluate.EvaluationModule:
    """``evaluate.load`` one of tlnlp's metric modules (no network needed).

    Args:
        name: ``"classification"`` or ``"squad"``.
        config_name: ``"multilabel"`` (classification) or ``"squad_v2"`` (squad); None for the default.
        **kwargs: Other ``evaluate.load`` arguments, e.g. ``num_labels`` for classification or
            ``keep_in_memory=True``.

    Returns:
        The loaded metric; its ``compute`` returns tlnlp's metrics dict.
    """
    import evaluate  # deferred: evaluate imports datasets; importing tlnlp.tasks stays light

    return evaluate.load(metric_path(name), config_name=config_name, **kwargs)


#: Keys of the evaluator's result that time the pipeline rather than score it.
TIMING_KEYS = ("total_time_in_seconds", "samples_per_second", "latency_in_seconds")


def as_dataset(data: Any) -> datasets.Dataset:
    """A ``datasets.Dataset`` from a Dataset, a dict of columns or a list of row dicts (for the evaluators).

    Args:
        data: The rows.

    Returns:
        ``data`` itself when it is a Dataset, else a Dataset built from it.

    Raises:
        TypeError: Any other type.
    """
    import datasets  # deferred: heavy; importing tlnlp.tasks stays light

    if isinstance(data, datasets.Dataset):
        return data
    if isinstance(data, Mapping):
        return datasets.Dataset.from_dict(dict(data))
    if isinstance(data, Sequence) and not isinstance(data, str):
        return datasets.Dataset.from_list(list(data))
    raise TypeError(f"Expected a datasets.Dataset, a dict of columns or a list of rows, got {type(data).__name__}.")


def check_columns(data: datasets.Dataset, *columns: str | None) -> datasets.Dataset:
    """Check that ``data`` holds the columns an evaluator reads.

    Args:
        data: The dataset.
        *columns: Column names; None stands for a column not used.

    Returns:
        ``data``.

    Raises:
        ValueError: A missing column (the message lists the dataset's columns).
    """
    for column in columns:
        if column is not None and column not in data.column_names:
            raise ValueError(f"Column {column!r} is not in the dataset; its columns are: "
                             f"{', '.join(data.column_names)}.")
    return data


def accept_ready_pipelines(evaluator: Any) -> Any:
    """Let an ``evaluate`` evaluator take a ready pipeline as it is, checking only its task.

    ``prepare_pipeline`` of evaluate 0.4 tests ``isinstance(pipe, transformers.TFPreTrainedModel)``, a class that
    transformers 5 removed, so it raises ``AttributeError`` on every ready pipeline. tlnlp always hands the
    evaluator a ready pipeline, so that step is replaced (on this evaluator only) by a check of ``pipe.task``.

    Args:
        evaluator: An ``evaluate`` evaluator (``evaluate.evaluator(task)`` or an evaluator class's instance).

    Returns:
        The same evaluator.
    """
    task = evaluator.task

    def prepare_pipeline(model_or_pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        found = getattr(model_or_pipeline, "task", None)
        if found != task:
            raise ValueError(f"Expected a ready {task!r} pipeline (a callable whose .task is {task!r}), got "
                             f"{type(model_or_pipeline).__name__} with task {found!r}.")
        return model_or_pipeline

    evaluator.prepare_pipeline = prepare_pipeline
    return evaluator
