"""Unlabelled text for language-model adaptation, from any source tlnlp reads.

* ``--dataset_name bundled:<corpus>``: the corpus' texts (its labels ignored), its own train/validation splits.
* ``--dataset_name <hub dataset>``: the text column of its splits (labels ignored).
* ``--train_file corpus.txt`` (or ``.text``): a plain UTF-8 text file, one document per non-blank line.
* ``--train_file data.csv|tsv|json|jsonl|parquet``: the text column (``--text_column``, default ``text`` or
  ``sentence``); a label column may be there or not.

Without a validation split (``--validation_file`` or the source's own), ``--validation_split_percentage`` of the
texts is held out (seeded) for the perplexity reports. ``--max_train_samples`` / ``--max_eval_samples`` keep the
first N of a seeded shuffle. The texts of a labelled task (labels ignored) come from
:func:`tlnlp.tasks.language_modeling.data.task_texts`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlnlp.assets import BUNDLED_PREFIX
from tlnlp.config.args import DataArgs
from tlnlp.data.bundled import CORPORA, bundled_corpus
from tlnlp.data.files import read_table
from tlnlp.data.hub import load_hub_tables
from tlnlp.data.splits import normalise_whitespace
from tlnlp.data.validation import DataError, Table, resolve_column

__all__ = ["PLAIN_TEXT_EXTENSIONS", "TextData", "load_text_data", "read_plain_text", "text_fingerprint"]

logger = logging.getLogger(__name__)

#: File extensions read as plain text, one document per line.
PLAIN_TEXT_EXTENSIONS = (".txt", ".text")


@dataclass
class TextData:
    """Unlabelled texts split for training and held-out evaluation.

    Attributes:
        train: Texts to train on.
        validation: Held-out texts (perplexity before and after).
        name: Where they come from.
        fingerprint: sha256 over both splits, in order.
    """

    train: list[str]
    validation: list[str]
    name: str
    fingerprint: str = ""


def text_fingerprint(train: list[str], validation: list[str]) -> str:
    """sha256 hex over the training texts, then the held-out texts, in order."""
    digest = hashlib.sha256()
    for split, texts in (("train", train), ("validation", validation)):
        digest.update(f"\n#{split}\n".encode())
        for text in texts:
            digest.update(text.encode("utf-8") + b"\n")
    return digest.hexdigest()


def read_plain_text(path: str | Path, split: str = "train") -> list[str]:
    """Read a UTF-8 text file: one document per non-blank line, whitespace normalised.

    Args:
        path: The file.
        split: Which split it provides (for messages).

    Returns:
        The non-empty lines.

    Raises:
        DataError: The file is missing, not UTF-8, or holds no text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{split} text file {str(path)!r} does not exist (resolved to {str(path.resolve())!r}). "
                        "Fix: check the path.")
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{split} text file {path.name!r} is not UTF-8 (byte {err.start}). Fix: re-save it as "
                        "UTF-8.") from None
    lines = [normalise_whitespace(line) for line in content.splitlines()]
    texts = [line for line in lines if line]
    if not texts:
        raise DataError(f"{split} text file {path.name!r} holds no text (every line is blank).")
    return texts


def _table_texts(table: Table, split: str, data_args: DataArgs) -> list[str]:
    column = resolve_column(table, split, data_args.text_column, ("text", "sentence"), "--text_column")
    texts = []
    for value in table.columns[column]:
        text = normalise_whitespace(str(value)) if value is not None else ""
        if text:
            texts.append(text)
    if not texts:
        raise DataError(f"The {split} split of {table.source} has no non-empty text in column {column!r}.")
    return texts


def _file_texts(path: str, split: str, data_args: DataArgs) -> list[str]:
    if Path(path).suffix.lower() in PLAIN_TEXT_EXTENSIONS:
        return read_plain_text(path, split)
    return _table_texts(read_table(path, split), split, data_args)


def _source_splits(data_args: DataArgs) -> tuple[dict[str, list[str]], str]:
    name = data_args.dataset_name
    if name is not None and name.startswith(BUNDLED_PREFIX):
        preset = bundled_corpus(CORPORA, name[len(BUNDLED_PREFIX):])
        parts, _ = preset.load_splits()
        return {split: [row["text"] for row in rows] for split, rows in parts.items()}, name
    if name is not None:
        tables, _ = load_hub_tables(name, data_args.dataset_config_name, data_args.label_column or "label",
                                    CORPORA.names())
        return {split: _table_texts(table, split, data_args) for split, table in tables.items()}, name
    files = {"train": data_args.train_file, "validation": data_args.validation_file}
    texts = {split: _file_texts(path, split, data_args) for split, path in files.items() if path is not None}
    return texts, Path(str(data_args.train_file)).name


def _shuffled_head(texts: list[str], limit: int | None, seed: int) -> list[str]:
    if limit is None or limit >= len(texts):
        return texts
    order = np.random.default_rng(seed).permutation(len(texts))[:limit]
    return [texts[i] for i in sorted(order)]


def load_text_data(data_args: DataArgs, seed: int | None = None) -> TextData:
    """Load unlabelled texts for language modelling (labels, if any, are ignored).

    Args:
        data_args: The source (``dataset_name`` or ``train_file`` [+ ``validation_file``]), ``text_column``,
            ``validation_split_percentage``, ``max_train_samples`` and ``max_eval_samples``.
        seed: Seed for the held-out split and subsampling; defaults to ``data_args.split_seed``.

    Returns:
        Training and held-out texts.

    Raises:
        DataError: Unreadable source, missing text column, no text, or too few texts to hold any out.
    """
    seed = data_args.split_seed if seed is None else seed
    splits, name = _source_splits(data_args)
    train, validation = splits["train"], splits.get("validation")
    if validation is None:
        held = round(len(train) * data_args.validation_split_percentage / 100)
        if held < 1 or held >= len(train):
            raise DataError(f"{len(train)} texts in {name} and validation_split_percentage="
                            f"{data_args.validation_split_percentage}: nothing to hold out for the perplexity "
                            "report. Fix: give --validation_file or a larger percentage.")
        order = np.random.default_rng(seed).permutation(len(train))
        held_rows = set(order[:held].tolist())
        validation = [t for i, t in enumerate(train) if i in held_rows]
        train = [t for i, t in enumerate(train) if i not in held_rows]
    train = _shuffled_head(train, data_args.max_train_samples, seed)
    validation = _shuffled_head(validation, data_args.max_eval_samples, seed)
    data = TextData(train=train, validation=validation, name=name, fingerprint=text_fingerprint(train, validation))
    logger.info("Loaded %d training and %d held-out texts from %s (labels ignored), fingerprint %s", len(train),
                len(validation), name, data.fingerprint[:12])
    return data
