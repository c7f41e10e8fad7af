"""Task specs: what each task of a multi-task run trains on, parsed and checked before any work.

A task is written as comma-separated ``key=value`` pairs (``dataset=bundled:trec6,max_train_samples=500``) or, in
YAML, as a mapping. Its keys are the data flags of the classification recipe (:class:`tlnlp.config.DataArgs`:
``dataset`` / ``dataset_name``, ``train_file``, ``train_samples_per_class``, ``max_train_samples``...) except
``max_seq_length`` (one encoder reads every task: it is the run's), plus ``name``. Each task is parsed by
:func:`tlnlp.config.parse_args` itself, so its values are typed and checked exactly as the same flags of a recipe.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, resolved_config
from tlnlp.config.items import item_argv, key_value_pairs, parse_item
from tlnlp.errors import UserError
from tlnlp.training.stages import refuse_long_text_chunk

__all__ = ["ALIASES", "RUN_KEYS", "TaskOptions", "TaskSpec", "TaskSpecError", "build_task_specs",
           "check_task_names", "default_task_name", "parse_task_item", "task_keys"]

#: Short names a task may use for a flag.
ALIASES = {"dataset": "dataset_name"}
#: Settings of the whole run (top-level flags or YAML keys), never of one task.
RUN_KEYS = ("tasks", "sampling", "temperature", "target_task", "baseline", "max_seq_length", "method")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class TaskSpecError(UserError, ValueError):
    """A task (or the task list) is written wrongly; the message names the task, the key, the value and the fix."""


@dataclass
class TaskOptions:
    """A task's keys beyond its data."""

    name: str | None = field(default=None, metadata={"help": "The task's name in metric keys (eval_<name>_accuracy) "
                                                               "and folders (tasks/<name>); default: the dataset's."})


@dataclass
class TaskSpec:
    """One task, resolved.

    Attributes:
        index: Position in the task list, from 0 (the task id that routes a batch to its head).
        name: The task's name (metric keys, its head, its folder ``tasks/<name>``).
        data_args: The task's data (a recipe's ``DataArgs``).
        raw: The task as written (for the records).
    """

    index: int
    name: str
    data_args: DataArgs
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        """The data source as written (dataset name or training file)."""
        return str(self.data_args.dataset_name or self.data_args.train_file)

    def signature(self) -> dict[str, Any]:
        """What decides this task's data: a resumed run must match it."""
        return {"name": self.name, "data": resolved_config(self.data_args)}


def task_keys() -> list[str]:
    """Every key a task accepts: the data flags (but ``max_seq_length``), :class:`TaskOptions` and the aliases."""
    names = {f.name for dtype in (DataArgs, TaskOptions) for f in dataclasses.fields(dtype)} - {"max_seq_length"}
    return sorted(names | set(ALIASES))


def _check_key(key: str, where: str, known: Sequence[str]) -> None:
    if key in known:
        return
    run = {f.name for dtype in (ModelArgs, TrainingArgs) for f in dataclasses.fields(dtype)} | set(RUN_KEYS)
    if key in run:
        raise TaskSpecError(f"{where}: {key!r} is a setting of the whole multi-task run, not of one task (one "
                            f"encoder, one training loop): give it once as a top-level flag or YAML key (--{key}).")
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise TaskSpecError(f"{where}: unknown key {key!r}.{hint} A task takes the data flags of "
                        "recipes/classification.py (dataset, train_file, train_samples_per_class, max_train_samples, "
                        "text_column...) and name (see --help).")


def parse_task_item(item: Any, position: int) -> dict[str, Any]:
    """One item of ``--tasks`` -> its keys (aliases resolved), checked for unknown, repeated and missing keys.

    Args:
        item: ``"key=value,key=value"`` or a mapping (YAML).
        position: The item's index in ``tasks`` (0-based).

    Returns:
        ``{flag name: value}``; values stay as written (strings, or YAML's types).

    Raises:
        TaskSpecError: Not key=value, an unknown or repeated key, a bad name, or no data source.
    """
    where = f"tasks[{position}]"
    known = task_keys()
    found: dict[str, Any] = {}
    for key, value in key_value_pairs(item, where, "dataset=bundled:trec6,max_train_samples=500", TaskSpecError):
        _check_key(key, where, known)
        name = ALIASES.get(key, key)
        if name in found:
            raise TaskSpecError(f"{where}: {key!r} is given twice; keep one value.")
        found[name] = value
    if found.get("dataset_name") in (None, "") and found.get("train_file") in (None, ""):
        raise TaskSpecError(f"{where}: no data: give dataset=<name> (a bundled corpus such as "
                            "bundled:movie_sentiment, a Hub dataset or a local dataset folder) or "
                            "train_file=<csv/json/jsonl/parquet file>.")
    name = found.get("name")
    if name is not None and not _NAME.match(str(name)):
        raise TaskSpecError(f"{where}: name={name!r} must be letters, digits, '_' or '-' (it names metric keys "
                            "and a folder), e.g. name=movie.")
    return found


def default_task_name(raw: Mapping[str, Any]) -> str:
    """The task's name: its ``name``, else the dataset's last part (``bundled:movie_sentiment`` -> movie_sentiment)."""
    if raw.get("name"):
        return str(raw["name"])
    source = str(raw.get("dataset_name") or raw.get("train_file"))
    last = source.split(":")[-1].rstrip("/").split("/")[-1]
    last = re.sub(r"\.(csv|tsv|jsonl?|parquet)$", "", last)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", last).strip("_") or "task"


def check_task_names(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every task's name, refusing two tasks with the same one.

    Raises:
        TaskSpecError: Naming both positions, the name and the fix.
    """
    seen: dict[str, int] = {}
    for position, raw in enumerate(items):
        name = default_task_name(raw)
        if name in seen:
            raise TaskSpecError(f"tasks[{seen[name]}] and tasks[{position}] are both named {name!r}; task names "
                                "must be unique (they name each task's head, metrics and folder). Fix: add "
                                f"name=<another name> to one of them, e.g. name={name}_2.")
        seen[name] = position
    return list(seen)


def build_task_specs(items: Sequence[Any], data_defaults: Mapping[str, Any] | None = None) -> list[TaskSpec]:
    """Parse and check every task, before any data is loaded.

    Args:
        items: The run's ``tasks`` (strings or mappings, see :func:`parse_task_item`).
        data_defaults: Data flags every task takes unless it sets its own; ``max_seq_length`` is every task's.

    Returns:
        One :class:`TaskSpec` per task, in order (``index`` is the task id).

    Raises:
        TaskSpecError: Any task written wrongly, or two tasks with one name.
    """
    if not items:
        raise TaskSpecError("tasks is empty; give at least one task, e.g. --tasks dataset=bundled:movie_sentiment")
    raws = [parse_task_item(item, position) for position, item in enumerate(items)]
    names = check_task_names(raws)
    specs = []
    for position, (raw, name) in enumerate(zip(raws, names, strict=True)):
        data_args, _ = parse_item((DataArgs, TaskOptions), item_argv(raw), dict(data_defaults or {}),
                                  f"tasks[{position}] ({name})", "task", TaskSpecError)
        refuse_long_text_chunk(data_args, "multitask")
        specs.append(TaskSpec(index=position, name=name, data_args=data_args, raw={str(k): v for k, v in raw.items()}))
    return specs
