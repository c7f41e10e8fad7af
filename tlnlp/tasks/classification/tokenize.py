"""Tokenisation for sequence classification: truncation only; a dynamic-padding collator pads each batch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import datasets

if TYPE_CHECKING:
    from tlnlp.tasks.classification.data import TaskData

__all__ = ["tokenize_classification"]

logger = logging.getLogger(__name__)


def _multi_hot(rows: list[list[int]], num_labels: int) -> list[list[float]]:
    out = []
    for row in rows:
        vector = [0.0] * num_labels
        for class_id in row:
            vector[class_id] = 1.0
        out.append(vector)
    return out


def tokenize_classification(data: TaskData, tokenizer: Any, max_seq_length: int) -> datasets.DatasetDict:
    """Tokenise every split for sequence classification.

    Texts are truncated to ``max_seq_length`` tokens (for pairs, the longer text is cut first) and never
    padded. The output columns are the tokenizer's (``input_ids``, ``attention_mask`` and, when the tokenizer
    gives them, ``token_type_ids``) plus ``labels``: the class id for single-label data, or a multi-hot
    ``list[float]`` of length ``num_labels`` for multi-label data. Text columns are removed; row order is
    kept.

    Args:
        data: The data from :func:`~tlnlp.tasks.load_task_data`.
        tokenizer: A Hugging Face tokenizer.
        max_seq_length: Longest tokenised input, special tokens included.

    Returns:
        The tokenised splits, with the same keys as ``data.splits``.

    Raises:
        ValueError: ``max_seq_length`` is not positive.
    """
    if max_seq_length < 1:
        raise ValueError(f"max_seq_length={max_seq_length!r} must be a positive number of tokens.")
    pair = data.has_text_pair
    num_labels = data.num_labels
    multi = data.multi_label

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = tokenizer(batch["text"], batch["text_pair"] if pair else None, truncation=True,
                            max_length=max_seq_length, padding=False)
        out = dict(encoded)
        out["labels"] = _multi_hot(batch["label"], num_labels) if multi else list(batch["label"])
        return out

    result = {}
    for split, dataset in data.splits.items():
        remove = [c for c in dataset.column_names if c in ("text", "text_pair", "label")]
        mapped = dataset.map(encode, batched=True, remove_columns=remove, desc=f"Tokenizing {split}")
        if multi:
            mapped = mapped.cast_column("labels", datasets.List(datasets.Value("float32")))
        result[split] = mapped
    logger.info("Tokenized %s (max_seq_length=%d)", {s: len(d) for s, d in result.items()}, max_seq_length)
    return datasets.DatasetDict(result)
