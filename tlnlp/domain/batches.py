"""Source and target rows in every batch: target texts tokenised, paired with the source rows, and the collator.

Each training row of a domain-adaptation run is a source row (its tokens and class label) with one target row's
tokens beside it (``target_*`` columns). The pairing is a seeded permutation of the target rows, cycled when
there are fewer target rows than source rows, so it is the same on every process and after a resume. The
collator turns ``n`` such rows into one batch of ``2n`` rows: the source rows first (with their labels), then the
target rows (label :data:`~tlnlp.domain.adversary.IGNORE_INDEX`), padded together, with ``domain_labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from tlnlp.domain.adversary import IGNORE_INDEX, SOURCE, TARGET

__all__ = ["PAIR_COLUMNS", "TARGET_PREFIX", "DomainMixCollator", "pair_with_target", "tokenize_texts"]

#: Prefix of the target row's columns in a paired training row.
TARGET_PREFIX = "target_"
#: Columns a paired training row adds to the source row's (the Trainer must keep them).
PAIR_COLUMNS = ("target_input_ids", "target_attention_mask", "target_token_type_ids", "length")


def tokenize_texts(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_length: int,
                   labels: Sequence[int] | None = None) -> datasets.Dataset:
    """Tokenise texts (truncated to ``max_length``, not padded), with ``labels`` when given.

    Args:
        texts: The texts.
        tokenizer: The model's tokenizer.
        max_length: Longest tokenised input, special tokens included.
        labels: Class ids, one per text.

    Returns:
        A dataset with the tokenizer's columns (and ``labels``).
    """
    columns: dict[str, list[Any]] = {"text": list(texts)}
    if labels is not None:
        columns["labels"] = list(labels)
    rows = datasets.Dataset.from_dict(columns)
    return rows.map(lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length, padding=False),
                    batched=True, remove_columns=["text"], desc="Tokenizing target texts")


def pair_with_target(source: datasets.Dataset, target: datasets.Dataset, seed: int,
                     length_column: str = "length") -> datasets.Dataset:
    """Give every source row one target row: a seeded permutation of the target rows, cycled if they are fewer.

    Args:
        source: Tokenised source training rows (with ``labels``).
        target: Tokenised target rows (no labels).
        seed: Seed of the permutation.
        length_column: Column holding each pair's longer length (length-grouped batches read it).

    Returns:
        The source rows with ``target_<column>`` columns and ``length_column``.

    Raises:
        ValueError: No target rows, or no source rows.
    """
    if len(target) == 0 or len(source) == 0:
        raise ValueError(f"Cannot pair {len(source)} source rows with {len(target)} target rows: both must be "
                         "non-empty.")
    order = np.random.default_rng(seed).permutation(len(target))
    picks = [int(order[i % len(target)]) for i in range(len(source))]
    chosen = target.select(picks).select_columns([c for c in target.column_names if c != "labels"])
    chosen = chosen.rename_columns({c: TARGET_PREFIX + c for c in chosen.column_names})
    paired = datasets.concatenate_datasets([source, chosen], axis=1)
    lengths = [max(len(a), len(b)) for a, b in zip(paired["input_ids"], paired["target_input_ids"], strict=True)]
    return paired.add_column(length_column, lengths)


class DomainMixCollator:
    """Pads paired rows into one batch of source rows then target rows, with ``labels`` and ``domain_labels``.

    Rows without ``target_*`` columns (validation and test rows) are padded as they are, without domain labels.

    Args:
        tokenizer: The model's tokenizer.
        pad_to_multiple_of: Pad lengths to a multiple of this (e.g. 8 with mixed precision).
        length_column: A column to drop (the pairs' lengths, read by the sampler only).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None,
                 length_column: str = "length") -> None:
        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
        self.length_column = length_column

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """One batch: ``2n`` rows for ``n`` paired rows (source first), or the rows as they are."""
        rows = [{k: v for k, v in f.items() if k != self.length_column} for f in features]
        if not rows or TARGET_PREFIX + "input_ids" not in rows[0]:
            return self.pad(rows)
        source = [{k: v for k, v in row.items() if not k.startswith(TARGET_PREFIX)} for row in rows]
        target = [{**{k[len(TARGET_PREFIX):]: v for k, v in row.items() if k.startswith(TARGET_PREFIX)},
                   "labels": IGNORE_INDEX} for row in rows]
        batch = self.pad(source + target)
        batch["domain_labels"] = torch.tensor([SOURCE] * len(source) + [TARGET] * len(target), dtype=torch.long)
        return batch
