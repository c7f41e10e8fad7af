"""The Trainer of a multi-task run: one-task batches from :class:`MultiTaskSampler`, and per-task evaluation.

It is tlnlp's :class:`~tlnlp.training.TlnlpTrainer` (so the methods' hooks run) with two changes:

* training draws its rows from :class:`~tlnlp.multitask.sampler.MultiTaskSampler` in blocks of per-device batch x
  processes rows of one task, so every batch of every process in a step holds one task (``train_sampling_strategy``
  is not used);
* evaluation scores every task's validation split with that task's metrics (``eval_<task>_accuracy``,
  ``eval_<task>_loss``...) and adds their unweighted means over the tasks (``eval_accuracy``, ``eval_loss``...), which
  ``--metric_for_best_model`` may name like any other metric.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import DataCollatorWithPadding

from tlnlp.methods import MethodResult
from tlnlp.multitask.sampler import MultiTaskSampler
from tlnlp.training import TlnlpTrainer, pad_multiple

__all__ = ["MultiTaskTrainer", "SamplingSettings", "build_multitask_trainer", "multitask_trainer_kwargs", "task_means"]

logger = logging.getLogger(__name__)

_NOT_AVERAGED = ("runtime", "per_second", "samples", "epoch")


@dataclass(frozen=True)
class SamplingSettings:
    """How the training sampler mixes the tasks.

    Attributes:
        sampling: ``proportional``, ``temperature`` or ``round_robin``.
        temperature: T of temperature sampling.
        seed: Seed of the block order and the rows within each task.
    """

    sampling: str
    temperature: float
    seed: int


def task_means(metrics: Mapping[str, Any], prefix: str, names: Sequence[str]) -> dict[str, float]:
    """Unweighted means over the tasks of every metric all tasks report (``eval_<task>_accuracy`` -> ``eval_accuracy``).

    Timings and counts are not averaged.
    """
    found: dict[str, list[float]] = {}
    for name in names:
        start = f"{prefix}_{name}_"
        for key, value in metrics.items():
            metric = key[len(start):]
            if key.startswith(start) and isinstance(value, (int, float)) and not metric.endswith(_NOT_AVERAGED):
                found.setdefault(metric, []).append(float(value))
    return {f"{prefix}_{metric}": float(np.mean(values)) for metric, values in found.items()
            if len(values) == len(names)}


class MultiTaskTrainer(TlnlpTrainer):
    """``TlnlpTrainer`` with one-task batches and per-task evaluation (see the module docstring).

    Args:
        *args: As :class:`~tlnlp.training.TlnlpTrainer`; ``train_dataset`` is a
            :class:`~tlnlp.multitask.data.MultiTaskDataset` and ``eval_dataset`` a dict task name -> its split.
        sampling: How tasks are mixed.
        task_metrics: Task name -> its ``compute_metrics``.
        **kwargs: As :class:`~tlnlp.training.TlnlpTrainer`.
    """

    def __init__(self, *args: Any, sampling: SamplingSettings,
                 task_metrics: Mapping[str, Callable[..., dict[str, float]]], **kwargs: Any) -> None:
        self.sampling = sampling
        self.task_metrics = dict(task_metrics)
        super().__init__(*args, **kwargs)

    def train_sampler(self, train_dataset: Any = None) -> MultiTaskSampler:
        """The sampler of the training rows: blocks of per-device batch x processes rows of one task."""
        dataset = self.train_dataset if train_dataset is None else train_dataset
        block = self.args.per_device_train_batch_size * max(1, self.args.world_size)
        return MultiTaskSampler(dataset.sizes, block, self.sampling.sampling, self.sampling.temperature,
                                self.sampling.seed)

    def _get_train_sampler(self, train_dataset: Any = None) -> MultiTaskSampler:
        return self.train_sampler(train_dataset)

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """Every task's validation split with its own metrics, plus the means over the tasks.

        ``eval_dataset`` may be a task name (that task's split), a dataset (scored with the metrics of the task set
        by :meth:`use_task`) or None (every task).
        """
        if isinstance(eval_dataset, str) and eval_dataset in self.task_metrics:
            self.use_task(eval_dataset)
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if eval_dataset is None and isinstance(self.eval_dataset, dict):
            metrics = super().evaluate(None, ignore_keys, metric_key_prefix)  # calls back here once per task
            means = task_means(metrics, metric_key_prefix, list(self.eval_dataset))
            self.log(means)
            return {**metrics, **means}
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def use_task(self, task: str) -> None:
        """Score the next evaluation or prediction with ``task``'s metrics."""
        self.compute_metrics = self.task_metrics[task]


def multitask_trainer_kwargs(prepared: MethodResult, tokenizer: Any, train: Any, evals: Mapping[str, Any],
                             train_args: Any, *, sampling: SamplingSettings,
                             task_metrics: Mapping[str, Callable[..., dict[str, float]]],
                             callbacks: Sequence[Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of :class:`MultiTaskTrainer` (or a subclass) for a prepared multi-task model.

    Dynamic padding, the method's callbacks, evaluation turned off when no task has a validation split. The
    arguments are those of :func:`build_multitask_trainer`, which calls it (a hyperparameter search builds its own
    Trainer class with the same keyword arguments).
    """
    all_callbacks = list(callbacks or [])
    for method in prepared.methods:
        all_callbacks += method.callbacks(prepared.model, prepared.method_args)
    if not evals and train_args.eval_strategy != "no":
        logger.warning("No task has a validation split: evaluation during training is turned off.")
        train_args.eval_strategy = "no"
    return {"model": prepared.model, "args": train_args, "train_dataset": train,
            "data_collator": DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple(train_args)),
            "eval_dataset": dict(evals) or None, "processing_class": tokenizer,
            "compute_metrics": next(iter(task_metrics.values())), "callbacks": all_callbacks, "prepared": prepared,
            "sampling": sampling, "task_metrics": task_metrics}


def build_multitask_trainer(prepared: MethodResult, tokenizer: Any, train: Any, evals: Mapping[str, Any],
                            train_args: Any, *, sampling: SamplingSettings,
                            task_metrics: Mapping[str, Callable[..., dict[str, float]]],
                            callbacks: Sequence[Any] | None = None) -> MultiTaskTrainer:
    """A :class:`MultiTaskTrainer` for a prepared multi-task model, with dynamic padding and the method's hooks.

    Args:
        prepared: What :func:`~tlnlp.multitask.methods.prepare_multitask_method` returned.
        tokenizer: The encoder's tokenizer (pads each batch to its longest row).
        train: The training rows of every task (:class:`~tlnlp.multitask.data.MultiTaskDataset`).
        evals: Task name -> its validation rows (a one-task ``MultiTaskDataset``); empty: no evaluation.
        train_args: ``TrainingArguments``.
        sampling: How tasks are mixed.
        task_metrics: Task name -> its ``compute_metrics``.
        callbacks: Extra Trainer callbacks.

    Returns:
        The Trainer.
    """
    trainer = MultiTaskTrainer(**multitask_trainer_kwargs(prepared, tokenizer, train, evals, train_args,
                                                          sampling=sampling, task_metrics=task_metrics,
                                                          callbacks=callbacks))
    for method in prepared.methods:
        method.setup_trainer(trainer, prepared.method_args)
    return trainer
