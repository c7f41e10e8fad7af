"""Rows scored by their windows (``--long_text chunk``): a row's logits are the mean of its windows' logits.

:func:`~tlnlp.tasks.classification.tokenize.tokenize_classification` gives each window a ``row_id``. Training
needs nothing more: every window trains with its row's label. Scoring does: :func:`row_windows_trainer` makes a
Trainer class that keeps ``row_id`` out of the model but hands it to the metrics (as a second label), so that its
``compute_metrics`` (:class:`RowMetrics`) and ``predict`` see one averaged row where the model saw several windows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tlnlp.errors import UserError

__all__ = ["ROW_ID", "LongTextError", "RowMetrics", "RowWindowsMixin", "check_long_text", "mean_by_row",
           "row_windows_trainer"]

#: The column of windowed splits that names each window's row (its index in the split).
ROW_ID = "row_id"


class LongTextError(UserError, ValueError):
    """``--long_text chunk`` asked where windows cannot be scored (text pairs, embedding methods, a slow tokenizer)."""


def check_long_text(data_args: Any, method: Any) -> None:
    """Refuse ``--long_text chunk`` for a method that does not train with the Trainer (heads on sentence embeddings).

    Raises:
        LongTextError: Naming the method and the fix.
    """
    if getattr(data_args, "long_text", "truncate") == "chunk" and not method.trains_with_trainer:
        raise LongTextError(f"--long_text chunk needs a method that trains with the Trainer; method={method.name!r} "
                            "fits a head on sentence embeddings of whole texts (cut to the encoder's length). Use "
                            "--long_text truncate with it, or --method full (or lora...) with --long_text chunk.")


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, (tuple, list)) else values


def mean_by_row(values: Any, row_ids: Any) -> np.ndarray:
    """The mean of each row's windows: ``values`` (windows x ...) grouped by ``row_ids``, rows in ``row_id`` order."""
    array = np.asarray(_first(values), dtype=np.float64)
    rows = np.asarray(row_ids).reshape(-1).astype(np.int64)
    if array.shape[0] != rows.shape[0]:
        raise ValueError(f"{array.shape[0]} windows' scores but {rows.shape[0]} row ids.")
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    sums = np.zeros((counts.shape[0], *array.shape[1:]), dtype=np.float64)
    np.add.at(sums, inverse, array)
    return sums / counts.reshape(-1, *([1] * (array.ndim - 1)))


def first_by_row(values: Any, row_ids: Any) -> np.ndarray:
    """Each row's first window's ``values`` (its label: every window of a row carries it), rows in ``row_id`` order."""
    _, first = np.unique(np.asarray(row_ids).reshape(-1), return_index=True)
    return np.asarray(values)[first]


class RowMetrics:
    """A ``compute_metrics`` that scores rows: window logits averaged per row, then the wrapped metrics.

    The Trainer of :func:`row_windows_trainer` hands it ``label_ids = (labels, row_ids)``.

    Attributes:
        metrics: The wrapped ``compute_metrics`` (called with one ``(logits, labels)`` per row).
    """

    def __init__(self, metrics: Callable[..., dict[str, float]]) -> None:
        self.metrics = metrics

    def __call__(self, eval_pred: Any, compute_result: bool | None = None) -> dict[str, float]:
        """Average the windows of each row, then score the rows.

        Raises:
            LongTextError: The labels come without row ids (a Trainer that does not keep ``row_id``), or the
                metrics are asked batch by batch (a row's windows may span batches).
        """
        label_ids = eval_pred[1]
        if compute_result is not None:
            raise LongTextError("--long_text chunk scores a row once all its windows are in; turn off "
                                "--batch_eval_metrics.")
        if not (isinstance(label_ids, (tuple, list)) and len(label_ids) == 2):
            raise LongTextError("--long_text chunk: the evaluation got window scores without their row ids, so it "
                                "cannot score rows. Build the Trainer with trainer_class=ClassificationTask."
                                "trainer_class(data_args, TlnlpTrainer), or use --long_text truncate.")
        from transformers import EvalPrediction  # deferred: the task layer loads transformers lazily

        labels, rows = label_ids
        return self.metrics(EvalPrediction(predictions=mean_by_row(eval_pred[0], rows),
                                           label_ids=first_by_row(labels, rows)))


class RowWindowsMixin:
    """Trainer mixin for windowed splits: ``row_id`` stays out of the model and comes back with the labels.

    ``row_id`` is added to the Trainer's ``label_names`` (so the column is kept and gathered with the labels) and
    dropped from the model's inputs; ``compute_metrics`` is wrapped in :class:`RowMetrics`; ``predict`` returns one
    row of averaged logits (and the row's label) per row. The evaluation loss stays the windows' mean loss.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.args.batch_eval_metrics:
            raise LongTextError("--long_text chunk scores a row once all its windows are in; turn off "
                                "--batch_eval_metrics.")
        if ROW_ID not in self.label_names:
            self.label_names = [*self.label_names, ROW_ID]
        if self.compute_metrics is not None and not isinstance(self.compute_metrics, RowMetrics):
            self.compute_metrics = RowMetrics(self.compute_metrics)

    def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """The Trainer's loss, without ``row_id`` among the model's inputs."""
        return super().compute_loss(model, {k: v for k, v in inputs.items() if k != ROW_ID}, *args, **kwargs)

    def predict(self, test_dataset: Any, ignore_keys: list[str] | None = None,
                metric_key_prefix: str = "test") -> Any:
        """The Trainer's ``predict``, with ``predictions`` and ``label_ids`` per row (window logits averaged)."""
        from transformers.trainer_utils import PredictionOutput  # deferred: the task layer loads transformers lazily

        output = super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        if not (isinstance(output.label_ids, tuple) and len(output.label_ids) == 2):
            return output
        labels, rows = output.label_ids
        return PredictionOutput(predictions=mean_by_row(output.predictions, rows),
                                label_ids=first_by_row(labels, rows), metrics=output.metrics)


def row_windows_trainer(base: type) -> type:
    """``base`` (a ``transformers.Trainer`` class, e.g. ``TlnlpTrainer``) with :class:`RowWindowsMixin` first."""
    return type(f"RowWindows{base.__name__}", (RowWindowsMixin, base), {"__doc__": RowWindowsMixin.__doc__})
