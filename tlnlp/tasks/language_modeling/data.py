"""Unlabelled text for LM adaptation taken from a labelled classification task (its labels ignored)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tlnlp.config.args import DataArgs
from tlnlp.data.text import TextData, text_fingerprint
from tlnlp.data.validation import DataError
from tlnlp.tasks.classification.data import load_classification_data

__all__ = ["task_texts"]


def task_texts(data_args: DataArgs, seed: int | None = None) -> TextData:
    """The texts of a labelled task's training split (labels ignored), with its validation texts held out.

    Every training text is kept, also those that ``max_train_samples`` or ``train_samples_per_class`` leave
    out of the labelled set: the unlabelled remainder is exactly what LM adaptation can use.

    Args:
        data_args: The task's data arguments (as for :func:`tlnlp.tasks.load_task_data`).
        seed: Seed for splitting; defaults to ``data_args.split_seed``.

    Returns:
        Training texts and held-out (validation) texts.

    Raises:
        DataError: As :func:`tlnlp.tasks.load_task_data`, or the task has no validation split.
    """
    full = replace(data_args, max_train_samples=None, train_samples_per_class=None)
    splits = load_classification_data(full, seed=seed).splits
    if "validation" not in splits:
        raise DataError("LM adaptation on the task's texts needs a validation split for the perplexity report; "
                        "set --validation_split_percentage above 0 or give --validation_file.")
    train, validation = list(splits["train"]["text"]), list(splits["validation"]["text"])
    name = data_args.dataset_name or Path(str(data_args.train_file)).name
    return TextData(train=train, validation=validation, name=f"{name} (training texts, labels ignored)",
                    fingerprint=text_fingerprint(train, validation))
