"""Every task's data: loaded and checked like a classification run's, tokenised, and served with its task id."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import torch

from tlnlp.multitask.spec import TaskSpec, TaskSpecError

__all__ = ["MODEL_COLUMNS", "MultiTaskDataset", "check_task_data", "load_tasks"]

#: Columns a batch keeps (besides ``task_ids``): what the classifiers take.
MODEL_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", "labels")


class MultiTaskDataset(torch.utils.data.Dataset):
    """Several tokenised splits one after the other; each row carries ``task_ids`` (the task that owns it).

    Args:
        parts: One tokenised split (a ``datasets.Dataset``) per task, in task-id order, or one split.
        task_ids: The task id of each part (default: 0, 1, 2...).
    """

    def __init__(self, parts: Sequence[Any], task_ids: Sequence[int] | None = None) -> None:
        self.parts = list(parts)
        self.task_ids = list(range(len(self.parts))) if task_ids is None else [int(t) for t in task_ids]
        if len(self.task_ids) != len(self.parts):
            raise ValueError(f"{len(self.parts)} parts but {len(self.task_ids)} task ids.")
        self.sizes = [len(part) for part in self.parts]
        self._starts = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self._columns = [[c for c in part.column_names if c in MODEL_COLUMNS] for part in self.parts]

    def __len__(self) -> int:
        return sum(self.sizes)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} is outside 0..{len(self) - 1}")
        part = bisect.bisect_right(self._starts, index) - 1
        row = self.parts[part][index - self._starts[part]]
        found = {column: row[column] for column in self._columns[part]}
        found["task_ids"] = self.task_ids[part]
        return found


def check_task_data(spec: TaskSpec, data: Any) -> None:
    """Refuse a task the multi-task run cannot train: multi-label data, or no training rows.

    Raises:
        TaskSpecError: Naming the task, what is wrong and the fix.
    """
    where = f"tasks[{spec.index}] ({spec.name}: {data.name})"
    if data.multi_label:
        raise TaskSpecError(f"{where} is multi-label (rows carry several labels); the multi-task recipe trains "
                            "single-label classification tasks only. Fix: train it with recipes/classification.py, "
                            "or give the task single-label data.")
    if "train" not in data.splits or len(data.splits["train"]) == 0:
        raise TaskSpecError(f"{where} has no training rows. Fix: check the task's data and its "
                            "train_samples_per_class / max_train_samples.")


def load_tasks(task: Any, specs: Sequence[TaskSpec]) -> list[Any]:
    """Load and check every task's data (the classification task's loader: any source tlnlp reads).

    Args:
        task: The classification :class:`tlnlp.tasks.Task`.
        specs: The tasks.

    Returns:
        Each task's :class:`~tlnlp.tasks.classification.data.TaskData`, in task order.

    Raises:
        TaskSpecError: A task the run cannot train (see :func:`check_task_data`).
        tlnlp.data.DataError: A problem with a task's data, naming the source.
    """
    datas = []
    for spec in specs:
        data = task.load_data(spec.data_args)
        check_task_data(spec, data)
        datas.append(data)
    return datas
