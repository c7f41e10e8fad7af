"""What a multi-task run records: a :class:`TaskRecord` per task, the baseline comparison, the run's result."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RESULTS_FILE", "MultiTaskResult", "TaskRecord", "compare_with_single_task", "split_accuracy"]

#: The run's record of every task, the sampling and the baseline comparison, in the run's folder.
RESULTS_FILE = "multitask_results.json"


@dataclass
class TaskRecord:
    """One task of a multi-task run (or of a single-task baseline run).

    Attributes:
        index: The task id.
        name: The task's name.
        dataset: The data's name (``bundled:<name>``, a Hub name or a file name).
        data_version: Version of a bundled corpus, else None.
        fingerprint: sha256 of the task's data (every split and the label names).
        labels: Class names, in label-id order.
        train_rows: Training rows.
        probability: Share of the training batches the sampler gives the task.
        blocks: Training blocks (one global batch each) the task got in the run.
        folder: The task's model folder, relative to the run's folder (``tasks/<name>``).
        metrics: The task's numbers from its folder: ``eval_*`` and ``test_*`` (accuracy, F1...).
    """

    index: int
    name: str
    dataset: str
    data_version: str | None
    fingerprint: str
    labels: list[str]
    train_rows: int
    probability: float
    blocks: int
    folder: str
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return dataclasses.asdict(self)


def split_accuracy(metrics: Mapping[str, Any]) -> tuple[str, float] | None:
    """``("test", accuracy)``, else ``("validation", accuracy)``, else None."""
    for prefix, split in (("test", "test"), ("eval", "validation")):
        value = metrics.get(f"{prefix}_accuracy")
        if isinstance(value, (int, float)):
            return split, float(value)
    return None


def compare_with_single_task(record: TaskRecord, single: TaskRecord, folder: str) -> dict[str, Any]:
    """The multi-task accuracy of a task against the same task trained alone; negative transfer flagged.

    Returns:
        ``task``, ``split``, ``multitask_accuracy``, ``single_task_accuracy``, ``gain`` (multi-task minus single),
        ``negative_transfer`` (multi-task below single-task), the baseline's ``steps`` and ``folder``.

    Raises:
        ValueError: The two have no accuracy on a common split.
    """
    mine, theirs = split_accuracy(record.metrics), split_accuracy(single.metrics)
    if mine is None or theirs is None or mine[0] != theirs[0]:
        raise ValueError(f"Task {record.name!r}: the multi-task and single-task runs have no accuracy on a common "
                         "split (the task's data needs a test or validation split).")
    gain = mine[1] - theirs[1]
    return {"task": record.name, "split": mine[0], "multitask_accuracy": mine[1], "single_task_accuracy": theirs[1],
            "gain": gain, "negative_transfer": bool(gain < 0), "steps": single.blocks, "folder": folder}


@dataclass
class MultiTaskResult:
    """A finished multi-task run.

    Attributes:
        output_dir: The run's folder.
        start_model: The encoder it started from.
        method: ``--method``.
        sampling: ``--sampling``.
        temperature: ``--temperature`` (used by ``temperature`` sampling only).
        target_task: The task of interest.
        tasks: One record per task, in task-id order.
        train_metrics: ``train_*`` numbers of the run (loss, runtime, steps, parameter counts).
        steps: Optimisation steps of the run.
        baseline: With ``--baseline single_task``: one comparison per task (:func:`compare_with_single_task`).
        seconds: Wall time of the run (baseline runs included).
        version: tlnlp's version.
        search_results: With a hyperparameter search: its ``hp_search_*`` numbers.
    """

    output_dir: str
    start_model: str
    method: str
    sampling: str
    temperature: float
    target_task: str
    tasks: list[TaskRecord]
    train_metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    baseline: list[dict[str, Any]] | None = None
    seconds: float = 0.0
    version: str = ""
    search_results: dict[str, float] = field(default_factory=dict)

    def task(self, name: str) -> TaskRecord:
        """The record of task ``name``."""
        found = {record.name: record for record in self.tasks}
        if name not in found:
            raise KeyError(f"task {name!r} is not one of: {', '.join(found)}")
        return found[name]

    def metrics(self) -> dict[str, float]:
        """Flat numbers of the run.

        ``train_*``, ``eval_<task>_*`` / ``test_<task>_*``, their means over the tasks (``eval_accuracy``...),
        ``target_*`` (the target task's) and, with the baseline, ``single_task_<task>_accuracy`` and
        ``transfer_gain_<task>`` (multi-task minus single-task accuracy); ``hp_search_*`` after a search.
        """
        flat: dict[str, float] = {**self.train_metrics, **self.search_results}
        for record in self.tasks:
            for key, value in record.metrics.items():
                prefix, _, rest = key.partition("_")
                flat[f"{prefix}_{record.name}_{rest}"] = value
        flat.update(_means(self.tasks))
        for key, value in self.task(self.target_task).metrics.items():
            if key.endswith(("_accuracy", "_f1_macro")):
                flat[f"target_{key}"] = value
        for entry in self.baseline or []:
            flat[f"single_task_{entry['task']}_accuracy"] = entry["single_task_accuracy"]
            flat[f"transfer_gain_{entry['task']}"] = entry["gain"]
        return flat

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: every field plus the flat :meth:`metrics`."""
        found = dataclasses.asdict(self)
        found["metrics"] = self.metrics()
        return found


def _means(records: Sequence[TaskRecord]) -> dict[str, float]:
    keys = [f"{split}_{name}" for split in ("eval", "test") for name in ("accuracy", "f1_macro", "loss")]
    means = {}
    for key in keys:
        values = [r.metrics[key] for r in records if isinstance(r.metrics.get(key), (int, float))]
        if values and len(values) == len(records):
            means[key] = float(sum(values) / len(values))
    return means
