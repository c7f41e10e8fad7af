"""Score any ``text-classification`` pipeline the Hugging Face way: ``evaluate.evaluator`` + tlnlp's metric module.

The evaluator runs the pipeline over a dataset, maps its label names to ids and hands both to the local
``tlnlp_classification`` module, so the numbers are those of :func:`~tlnlp.tasks.classification_metrics` (every
metric, not only accuracy) for a stock ``transformers.pipeline``, ``tlnlp.load_pipeline`` of a run, or a run's
pipeline fitted on sentence embeddings alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tlnlp.tasks.metric_modules import (
    TIMING_KEYS,
    accept_ready_pipelines,
    as_dataset,
    check_columns,
    load_metric,
)

if TYPE_CHECKING:
    import datasets

__all__ = ["evaluate_classification_pipeline"]


def _pipeline_labels(pipe: Any) -> list[str] | None:
    """The label names a pipeline answers with, where it says (a transformers model's id2label, tlnlp's heads)."""
    model = getattr(pipe, "model", None)
    if getattr(model, "labels", None) is not None:  # a sentence-embedding run's pipeline
        return [str(label) for label in model.labels]
    config = getattr(model, "config", None)
    id2label = getattr(config, "id2label", None)
    return [str(label) for label in id2label.values()] if id2label else None


def _check_pipeline(pipe: Any, label_names: Sequence[str]) -> None:
    """Refuse a multi-label pipeline, and one that answers labels ``label_names`` lacks."""
    config = getattr(getattr(pipe, "model", None), "config", None)
    if getattr(config, "problem_type", None) == "multi_label_classification":
        raise ValueError("evaluate's text-classification evaluator keeps one label per text, so it cannot score a "
                         "multi-label pipeline; score its thresholded outputs with classification_metrics("
                         "..., multi_label=True) or the 'classification' metric module (config_name='multilabel').")
    answered = _pipeline_labels(pipe)
    unknown = [label for label in answered or () if label not in label_names]
    if unknown:
        raise ValueError(f"The pipeline answers labels {unknown} that are not in label_names={list(label_names)}; "
                         "give label_names in the order of the dataset's label ids, with the pipeline's names.")


def _label_ids(data: datasets.Dataset, label_column: str, label_names: Sequence[str]) -> datasets.Dataset:
    """``data`` with its label column as class ids (label names are mapped with ``label_names``)."""
    values = data[label_column]  # the column was checked by check_columns
    if not any(isinstance(value, str) for value in values):
        return data
    index = {name: i for i, name in enumerate(label_names)}
    for row, value in enumerate(values):
        if value not in index:
            raise ValueError(f"Row {row}, column {label_column!r}: label {value!r} is not in label_names="
                             f"{list(label_names)}.")
    return data.map(lambda row: {label_column: index[row[label_column]]}, load_from_cache_file=False)


def evaluate_classification_pipeline(pipe: Any, dataset: Any, label_names: Sequence[str], *,
                                     text_column: str = "text", text_pair_column: str | None = None,
                                     label_column: str = "label", **evaluator_kwargs: Any) -> dict[str, Any]:
    """Score a single-label text-classification pipeline on a dataset with ``evaluate.evaluator``.

    Args:
        pipe: A ``text-classification`` pipeline (``transformers.pipeline``, ``tlnlp.load_pipeline`` of a
            classification run), or a callable with ``task = "text-classification"`` that answers as one.
        dataset: A ``datasets.Dataset``, a dict of columns or a list of rows.
        label_names: Class names in id order; the pipeline's answers are mapped to ids with them.
        text_column: Column of the texts.
        text_pair_column: Column of the second texts (sentence pairs), if any.
        label_column: Column of the true labels, as ids or as names from ``label_names``.
        **evaluator_kwargs: Other arguments of the evaluator's ``compute``, e.g. ``strategy="bootstrap"``,
            ``n_resamples``, ``random_state``.

    Returns:
        :func:`~tlnlp.tasks.classification_metrics`' dict (accuracy, f1_macro, ..., mcc); with
        ``strategy="bootstrap"`` each value is the evaluator's ``{"score", "confidence_interval",
        "standard_error"}``. The evaluator's timings are left out.

    Raises:
        ValueError: A multi-label pipeline, pipeline labels missing from ``label_names``, or unknown labels in
            the dataset.
    """
    import evaluate  # deferred: evaluate imports datasets and scipy; importing tlnlp.tasks stays light

    if not label_names:
        raise ValueError("label_names is empty; give the class names in id order.")
    _check_pipeline(pipe, label_names)
    data = check_columns(as_dataset(dataset), text_column, text_pair_column, label_column)
    data = _label_ids(data, label_column, label_names)
    metric = load_metric("classification", num_labels=len(label_names), keep_in_memory=True)
    result = accept_ready_pipelines(evaluate.evaluator("text-classification")).compute(
        model_or_pipeline=pipe, data=data, metric=metric, input_column=text_column,
        second_input_column=text_pair_column, label_column=label_column,
        label_mapping={name: i for i, name in enumerate(label_names)}, **evaluator_kwargs)
    return {key: value for key, value in result.items() if key not in TIMING_KEYS}
