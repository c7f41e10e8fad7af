"""Tokenisation for sequence classification: truncation (counted) or sliding windows; a collator pads each batch.

Texts longer than ``max_seq_length`` tokens are never cut silently: each split's count of such rows is logged and
kept on the result (:attr:`TokenizedSplits.lengths`), whence ``<split>_truncated_rows`` reaches
``all_results.json``. With ``long_text="chunk"`` such a row becomes several overlapping windows (the tokenizer's
``return_overflowing_tokens`` with ``stride``), each carrying the row's label and its ``row_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np

from tlnlp.tasks.classification.windows import ROW_ID, LongTextError

if TYPE_CHECKING:
    from tlnlp.tasks.classification.data import TaskData

__all__ = ["SplitLengths", "TokenizedSplits", "count_long_texts", "tokenize_classification"]

logger = logging.getLogger(__name__)

#: The metric prefix of each split, as the Trainer names them.
PREFIXES = {"train": "train", "validation": "eval", "test": "test"}
_LONG = "_longer_than_max"  # a column that lives only inside tokenize_classification


@dataclass(frozen=True)
class SplitLengths:
    """How one split fits ``max_seq_length``.

    Attributes:
        split: The split's name.
        rows: Its rows.
        long_rows: Rows longer than ``max_seq_length`` tokens (special tokens and text pairs included).
        max_seq_length: The limit.
        windows: Model inputs made of the rows with ``long_text="chunk"``; None when long rows were cut.
    """

    split: str
    rows: int
    long_rows: int
    max_seq_length: int
    windows: int | None = None

    def metrics(self) -> dict[str, int]:
        """``<prefix>_truncated_rows`` (chunk mode: 0, nothing is cut, plus ``_long_rows`` and ``_windows``)."""
        prefix = PREFIXES.get(self.split, self.split)
        if self.windows is None:
            return {f"{prefix}_truncated_rows": self.long_rows}
        return {f"{prefix}_truncated_rows": 0, f"{prefix}_long_rows": self.long_rows, f"{prefix}_windows": self.windows}

    def report(self) -> None:
        """Log the long rows: a warning when they were cut, a line of information when they were windowed."""
        if not self.long_rows or not _main_process():
            return
        share = f"{self.long_rows} of {self.rows} rows ({100.0 * self.long_rows / max(self.rows, 1):.1f}%)"
        if self.windows is None:
            logger.warning("%s: %s are longer than max_seq_length=%d tokens and were cut; --long_text chunk "
                           "classifies them whole", self.split, share, self.max_seq_length)
        else:
            logger.info("%s: %s are longer than max_seq_length=%d tokens; --long_text chunk classifies them by "
                        "their windows (%d windows for %d rows)", self.split, share, self.max_seq_length,
                        self.windows, self.rows)


class TokenizedSplits(datasets.DatasetDict):
    """The tokenised splits (a ``DatasetDict``) and how each fits ``max_seq_length``.

    Attributes:
        lengths: :class:`SplitLengths` by split name.
    """

    def __init__(self, splits: dict[str, datasets.Dataset], lengths: dict[str, SplitLengths]) -> None:
        super().__init__(splits)
        self.lengths = lengths

    def length_metrics(self, splits: Iterable[str] | None = None) -> dict[str, int]:
        """Each split's :meth:`SplitLengths.metrics`, ``{"train_truncated_rows": 3, "eval_truncated_rows": 0}``.

        Args:
            splits: The splits to report (e.g. those a run used); None: all.
        """
        names = self.lengths if splits is None else [name for name in splits if name in self.lengths]
        return {key: value for name in names for key, value in self.lengths[name].metrics().items()}


def _main_process() -> bool:
    import torch.distributed as dist  # deferred: only a launched run has a process group to ask

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _multi_hot(rows: list[list[int]], num_labels: int) -> list[list[float]]:
    out = []
    for row in rows:
        vector = [0.0] * num_labels
        for class_id in row:
            vector[class_id] = 1.0
        out.append(vector)
    return out


def _cut(tokenizer: Any, encoded: Any, texts: list[str], pairs: list[str] | None, max_length: int) -> list[int]:
    """1 for each row that truncation cut: a fast tokenizer keeps what it cut (``overflowing``); else count again."""
    if getattr(encoded, "encodings", None) is not None:
        return [int(bool(encoding.overflowing)) for encoding in encoded.encodings]
    whole = tokenizer(texts, pairs, truncation=False, padding=False)["input_ids"]
    return [int(len(ids) > max_length) for ids in whole]


def count_long_texts(tokenizer: Any, texts: list[str], max_length: int, pairs: list[str] | None = None) -> int:
    """How many texts (or text pairs) are longer than ``max_length`` tokens, special tokens included.

    Args:
        tokenizer: A Hugging Face tokenizer.
        texts: The texts.
        max_length: The limit.
        pairs: The second texts of pairs, or None.

    Returns:
        The number of texts that truncation to ``max_length`` would cut.
    """
    encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length, padding=False)
    return sum(_cut(tokenizer, encoded, texts, pairs, max_length))


def _check_windows(data: TaskData, tokenizer: Any, max_seq_length: int, stride: int) -> None:
    """Refuse what sliding windows cannot do here, before the tokenizer would panic on it."""
    if data.has_text_pair:
        raise LongTextError(f"--long_text chunk windows single texts; {data.name} has text pairs. Use --long_text "
                            "truncate for pair data.")
    if not getattr(tokenizer, "is_fast", False):
        raise LongTextError(f"--long_text chunk needs a fast tokenizer (overflowing windows); "
                            f"{type(tokenizer).__name__} is not one. Use --long_text truncate, or a model with a fast "
                            "tokenizer.")
    room = max_seq_length - tokenizer.num_special_tokens_to_add(pair=False)
    if not 0 <= stride < room:
        raise LongTextError(f"long_text_stride={stride} must be under the {room} text tokens of a window "
                            f"(max_seq_length={max_seq_length} less special tokens); lower --long_text_stride.")


def tokenize_classification(data: TaskData, tokenizer: Any, max_seq_length: int, long_text: str = "truncate",
                            stride: int | None = None) -> TokenizedSplits:
    """Tokenise every split for sequence classification.

    ``long_text="truncate"``: texts are cut to ``max_seq_length`` tokens (for pairs, the longer text first); one
    output row per input row, in order. ``long_text="chunk"`` (single texts, fast tokenizer): a longer text becomes
    windows of ``max_seq_length`` tokens sharing ``stride`` tokens with their neighbours, each with the row's
    label and a ``row_id`` column (the row's index in its split); windows follow their row's order. Nothing is
    padded. The other columns are the tokenizer's (``input_ids``, ``attention_mask`` and, when the tokenizer
    gives them, ``token_type_ids``) plus ``labels``: the class id for single-label data, or a multi-hot
    ``list[float]`` of length ``num_labels`` for multi-label data. Each split with long rows is logged.

    Args:
        data: The data from :func:`~tlnlp.tasks.load_task_data`.
        tokenizer: A Hugging Face tokenizer.
        max_seq_length: Longest tokenised input, special tokens included.
        long_text: ``truncate`` or ``chunk``.
        stride: ``chunk``: tokens that neighbouring windows share (default: a quarter of ``max_seq_length``).

    Returns:
        The tokenised splits, with the same keys as ``data.splits``, and their :class:`SplitLengths`.

    Raises:
        ValueError: ``max_seq_length`` is not positive or ``long_text`` unknown.
        LongTextError: ``chunk`` with text pairs, a slow tokenizer, or a stride that leaves no room.
    """
    if max_seq_length < 1:
        raise ValueError(f"max_seq_length={max_seq_length!r} must be a positive number of tokens.")
    if long_text not in ("truncate", "chunk"):
        raise ValueError(f"long_text={long_text!r} is not valid; choose one of: truncate, chunk.")
    stride = max_seq_length // 4 if stride is None else stride
    if long_text == "chunk":
        _check_windows(data, tokenizer, max_seq_length, stride)
    splits, lengths = {}, {}
    for split, dataset in data.splits.items():
        if long_text == "chunk":
            splits[split], lengths[split] = _windows(data, dataset, split, tokenizer, max_seq_length, stride)
        else:
            splits[split], lengths[split] = _truncated(data, dataset, split, tokenizer, max_seq_length)
        lengths[split].report()
    logger.info("Tokenized %s (max_seq_length=%d, long_text=%s)", {s: len(d) for s, d in splits.items()},
                max_seq_length, long_text)
    return TokenizedSplits(splits, lengths)


def _labels(data: TaskData, batch: dict[str, list[Any]]) -> list[Any]:
    return _multi_hot(batch["label"], data.num_labels) if data.multi_label else list(batch["label"])


def _finish(data: TaskData, mapped: datasets.Dataset) -> datasets.Dataset:
    if data.multi_label:
        return mapped.cast_column("labels", datasets.List(datasets.Value("float32")))
    return mapped


def _truncated(data: TaskData, dataset: datasets.Dataset, split: str, tokenizer: Any,
               max_seq_length: int) -> tuple[datasets.Dataset, SplitLengths]:
    pair = data.has_text_pair

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        pairs = batch["text_pair"] if pair else None
        encoded = tokenizer(batch["text"], pairs, truncation=True, max_length=max_seq_length, padding=False)
        out = dict(encoded)
        out["labels"] = _labels(data, batch)
        out[_LONG] = _cut(tokenizer, encoded, batch["text"], pairs, max_seq_length)
        return out

    remove = [c for c in dataset.column_names if c in ("text", "text_pair", "label")]
    mapped = dataset.map(encode, batched=True, remove_columns=remove, desc=f"Tokenizing {split}")
    long_rows = int(np.asarray(mapped[_LONG], dtype=np.int64).sum()) if len(mapped) else 0
    return _finish(data, mapped.remove_columns(_LONG)), SplitLengths(split, len(dataset), long_rows, max_seq_length)


def _windows(data: TaskData, dataset: datasets.Dataset, split: str, tokenizer: Any, max_seq_length: int,
             stride: int) -> tuple[datasets.Dataset, SplitLengths]:
    def encode(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, Any]:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_seq_length, stride=stride,
                            return_overflowing_tokens=True, padding=False)
        rows = encoded.pop("overflow_to_sample_mapping")
        out = {key: list(value) for key, value in encoded.items()}
        labels = _labels(data, batch)
        out["labels"] = [labels[row] for row in rows]
        out[ROW_ID] = [indices[row] for row in rows]
        return out

    mapped = dataset.map(encode, batched=True, with_indices=True, remove_columns=dataset.column_names,
                         desc=f"Windowing {split}")
    per_row = np.bincount(np.asarray(mapped[ROW_ID], dtype=np.int64), minlength=len(dataset)) if len(mapped) else []
    long_rows = int((np.asarray(per_row) > 1).sum())
    return _finish(data, mapped), SplitLengths(split, len(dataset), long_rows, max_seq_length, windows=len(mapped))
