"""``MultiTaskArgs``: the tasks, how batches mix them, the single-task baseline and the shared data settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tlnlp.multitask.sampler import SAMPLING
from tlnlp.multitask.spec import TaskOptions, TaskSpecError, check_task_names, parse_task_item

__all__ = ["BASELINES", "MultiTaskArgs"]

#: Values of ``--baseline``.
BASELINES = ("none", "single_task")

_TASKS_HELP = (
    "The tasks, one item each, as comma-separated key=value pairs, e.g. --tasks "
    "dataset=bundled:movie_sentiment,train_samples_per_class=8 dataset=bundled:amazon_sentiment,max_train_samples=1000"
    " (in YAML a list of such strings, or of mappings). Keys: dataset (alias of dataset_name) or train_file "
    "[validation_file, test_file, text_column, text_pair_column, label_column...], train_samples_per_class, "
    "max_train_samples, max_eval_samples, max_predict_samples, split_seed and every other data flag of "
    f"recipes/classification.py except max_seq_length (shared: one encoder); {', '.join(TaskOptions.__annotations__)}"
    " (the task's name in metrics and folders; default: the dataset's name). Each task gets its own head.")


@dataclass
class MultiTaskArgs:
    """Multi-task learning: the tasks (a head each on one encoder), batch mixing, baseline, shared data settings."""

    tasks: list[str] = field(default_factory=list, metadata={"help": _TASKS_HELP})
    sampling: str = field(
        default="temperature",
        metadata={"help": "How batches are drawn from the tasks (each batch holds rows of one task): proportional "
                          "(task i with probability n_i / sum n), temperature (n_i^(1/T), see --temperature) or "
                          "round_robin (tasks in turn, equal shares)."})
    temperature: float = field(
        default=2.0, metadata={"help": "T of --sampling temperature (> 0): 1 is proportional, larger values move "
                                       "towards equal shares (small tasks are seen more often)."})
    target_task: str | None = field(
        default=None, metadata={"help": "The task of interest (its name; default: the first task): reported as "
                                        "target_* in the results and on the card."})
    baseline: str = field(
        default="none",
        metadata={"help": "single_task: also train every task alone (same model, method, batch size, learning rate "
                          "and seed, as many optimisation steps as the task got in the multi-task run) and flag "
                          "negative transfer per task. none: skip it."})
    max_seq_length: int = field(default=128, metadata={"help": "Every task (one encoder): longer inputs are "
                                                                 "truncated."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Every task, unless it sets its own: "
                                                                           "keep N validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Every task, unless it sets its own: "
                                                                              "keep N test rows."})
    split_seed: int = field(default=42, metadata={"help": "Every task, unless it sets its own: seed for splitting "
                                                            "and sampling its data."})

    def __post_init__(self) -> None:
        if not self.tasks:
            raise TaskSpecError("tasks is empty; give at least one task, e.g. --tasks "
                                "dataset=bundled:movie_sentiment dataset=bundled:amazon_sentiment")
        items = [parse_task_item(item, position) for position, item in enumerate(self.tasks)]
        names = check_task_names(items)
        if self.sampling not in SAMPLING:
            raise TaskSpecError(f"sampling={self.sampling!r} is not valid; choose one of: {', '.join(SAMPLING)}.")
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise TaskSpecError(f"temperature={self.temperature!r} must be > 0 (tasks are drawn with p_i ∝ "
                                "n_i^(1/T): T=1 is proportional sampling, larger T moves towards equal shares).")
        if self.baseline not in BASELINES:
            raise TaskSpecError(f"baseline={self.baseline!r} is not valid; choose one of: {', '.join(BASELINES)}.")
        if self.target_task is not None and self.target_task not in names:
            raise TaskSpecError(f"target_task={self.target_task!r} is not a task of this run; the tasks are: "
                                f"{', '.join(names)}.")
        for name in ("max_seq_length", "max_eval_samples", "max_predict_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise TaskSpecError(f"{name}={value!r} must be a positive number.")

    def data_defaults(self) -> dict[str, Any]:
        """The data flags every task takes unless it sets its own (``max_seq_length`` is always this one)."""
        return {"max_seq_length": self.max_seq_length, "max_eval_samples": self.max_eval_samples,
                "max_predict_samples": self.max_predict_samples, "split_seed": self.split_seed}
