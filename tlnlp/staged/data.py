"""Label spaces between stages, and rehearsal: seeded rows of the previous stage mixed into the next one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import datasets

from tlnlp.data.splits import seeded_subset
from tlnlp.staged.spec import StageSpecError
from tlnlp.tasks.classification.data import TaskData, data_fingerprint

__all__ = ["check_rehearsal", "mix_rehearsal", "same_label_space"]


def same_label_space(a: Any, b: Any) -> bool:
    """Whether two stages' data have the same class names (in any order) and the same kind (single/multi-label)."""
    return sorted(a.labels) == sorted(b.labels) and bool(a.multi_label) == bool(b.multi_label)


def check_rehearsal(datas: Sequence[Any], rows: int) -> None:
    """Refuse rehearsal that cannot work, before any training: other labels, other columns, too few rows.

    Args:
        datas: Each stage's loaded data, in chain order.
        rows: ``--rehearsal_samples`` (0: off).

    Raises:
        StageSpecError: Naming the flag, its value, the two stages and the fix.
    """
    if not rows:
        return
    for i in range(1, len(datas)):
        previous, current = datas[i - 1], datas[i]
        pair = f"stage {i} ({previous.name}) into stage {i + 1} ({current.name})"
        if not same_label_space(previous, current):
            raise StageSpecError(
                f"rehearsal_samples={rows} mixes training rows of {pair}, but their label spaces differ: "
                f"{list(previous.labels)} vs {list(current.labels)}. Rehearsal needs the same labels in both. Fix: "
                "drop --rehearsal_samples (or set it to 0), or chain stages that share their labels.")
        if previous.has_text_pair != current.has_text_pair:
            raise StageSpecError(f"rehearsal_samples={rows} mixes rows of {pair}, but only one of them has text "
                                 "pairs. Fix: drop --rehearsal_samples, or chain stages of the same kind.")
        available = len(previous.splits["train"])
        if rows > available:
            raise StageSpecError(f"rehearsal_samples={rows}, but stage {i} ({previous.name}) has only {available} "
                                 f"training rows. Fix: set --rehearsal_samples to at most {available}.")


def mix_rehearsal(data: TaskData, previous: TaskData, rows: int, seed: int) -> TaskData:
    """``data`` with ``rows`` seeded training rows of ``previous`` appended to its training split.

    The rows are the first ``rows`` of a seeded shuffle of ``previous``'s own training split; their labels are
    mapped by name onto ``data``'s label ids. Validation and test splits are untouched. The fingerprint is
    recomputed (it describes the rows the stage trained on).

    Args:
        data: The stage's data.
        previous: The previous stage's data (same label names; see :func:`check_rehearsal`).
        rows: How many rows to mix in.
        seed: Seed of the draw.

    Returns:
        A new :class:`~tlnlp.tasks.classification.data.TaskData`.
    """
    picked = seeded_subset(previous.splits["train"], rows, seed)
    index = {name: i for i, name in enumerate(data.labels)}
    names = list(previous.labels)
    if data.multi_label:
        labels = [sorted(index[names[y]] for y in row) for row in picked["label"]]
    else:
        labels = [index[names[y]] for y in picked["label"]]
    train = data.splits["train"]
    columns: dict[str, list[Any]] = {"text": list(picked["text"])}
    if "text_pair" in train.column_names:
        columns["text_pair"] = list(picked["text_pair"])
    columns["label"] = labels
    extra = datasets.Dataset.from_dict(columns, features=train.features)
    splits = datasets.DatasetDict({**data.splits, "train": datasets.concatenate_datasets([train, extra])})
    return dataclasses.replace(data, splits=splits,
                               fingerprint=data_fingerprint(splits, list(data.labels), data.multi_label))
