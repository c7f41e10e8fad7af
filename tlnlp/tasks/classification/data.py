"""Classification data: any source (bundled corpus, Hub dataset, local files) -> ``text``/``label`` splits, checked."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from tlnlp.assets import BUNDLED_PREFIX
from tlnlp.config.args import DataArgs
from tlnlp.data.bundled import CORPORA, bundled_corpus
from tlnlp.data.files import read_table
from tlnlp.data.hub import load_hub_tables
from tlnlp.data.splits import sample_per_class, seeded_subset, split_overlap, stratified_split_indices
from tlnlp.data.validation import (
    DataError,
    LabelInfo,
    RawSplit,
    Table,
    check_label_coverage,
    check_texts,
    label_order,
    normalise_labels,
    resolve_column,
)

__all__ = ["SPLITS", "TaskData", "data_fingerprint", "load_classification_data"]

logger = logging.getLogger(__name__)

#: Canonical split names, in the order they are fingerprinted.
SPLITS = ("train", "validation", "test")


@dataclass
class TaskData:
    """Validated data for one task, with canonical columns and label names.

    Attributes:
        splits: ``train``, ``validation`` and (when available) ``test``; columns ``text``, ``label`` (class
            id, or a list of class ids for multi-label data) and, for pair tasks, ``text_pair``.
        labels: Class id -> class name.
        multi_label: Whether each row may carry several labels.
        name: Where the data comes from (``bundled:<name>``, a Hub name, or the training file's name).
        fingerprint: sha256 over the content of every split and the label names (see
            :func:`data_fingerprint`).
        version: Preset version, for bundled corpora.
        license: Licence of the data, when known.
        description: One line about the data.
        hub_dataset_id: Hub dataset name, when the data comes from the Hub (for model-card metadata).
    """

    splits: datasets.DatasetDict
    labels: list[str]
    multi_label: bool
    name: str
    fingerprint: str
    version: str | None = None
    license: str | None = None
    description: str | None = None
    hub_dataset_id: str | None = None

    @property
    def num_labels(self) -> int:
        """Number of classes."""
        return len(self.labels)

    @property
    def id2label(self) -> dict[int, str]:
        """Class id -> class name (as model configs store it)."""
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        """Class name -> class id."""
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def has_text_pair(self) -> bool:
        """Whether rows hold a second text (sentence-pair tasks)."""
        return "text_pair" in self.splits["train"].column_names


def data_fingerprint(splits: datasets.DatasetDict, labels: list[str], multi_label: bool) -> str:
    """sha256 hex of the label names and every row of every split, in order.

    Two loads give the same fingerprint exactly when they give the same rows, in the same order, with the same
    labels, so it identifies the data a run used.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps({"labels": labels, "multi_label": multi_label}).encode("utf-8"))
    for split in [s for s in SPLITS if s in splits] + sorted(set(splits) - set(SPLITS)):
        columns = splits[split].to_dict()
        keys = [k for k in ("text", "text_pair", "label") if k in columns]
        digest.update(f"\n#{split}:{','.join(keys)}\n".encode())
        for row in zip(*(columns[k] for k in keys), strict=True):
            digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _features(labels: list[str], multi_label: bool, pair: bool) -> datasets.Features:
    label = datasets.ClassLabel(names=labels)
    spec: dict[str, Any] = {"text": datasets.Value("string")}
    if pair:
        spec["text_pair"] = datasets.Value("string")
    spec["label"] = datasets.List(label) if multi_label else label
    return datasets.Features(spec)


def _dataset(columns: dict[str, list[Any]], labels: list[str], multi_label: bool) -> datasets.Dataset:
    features = _features(labels, multi_label, "text_pair" in columns)
    return datasets.Dataset.from_dict(columns, features=features)


def _load_bundled(name: str, data_args: DataArgs) -> TaskData:
    preset = bundled_corpus(CORPORA, name)
    ignored = [f for f in ("validation_file", "test_file", "text_column", "text_pair_column", "label_column",
                           "label_separator") if getattr(data_args, f) is not None]
    if ignored:
        logger.warning("bundled:%s has fixed columns and splits; ignoring %s", name, ", ".join(ignored))
    parts, labels = preset.load_splits()
    index = {label: i for i, label in enumerate(labels)}
    splits = datasets.DatasetDict({
        split: _dataset({"text": [r["text"] for r in rows], "label": [index[r["label"]] for r in rows]},
                        labels, False)
        for split, rows in parts.items()
    })
    return TaskData(splits=splits, labels=labels, multi_label=False, name=BUNDLED_PREFIX + name,
                    fingerprint="", version=preset.version, license=preset.license,
                    description=preset.description)


def _raw_split(split: str, table: Table, data_args: DataArgs) -> RawSplit:
    text_col = resolve_column(table, split, data_args.text_column, ("text", "sentence"), "--text_column")
    label_col = resolve_column(table, split, data_args.label_column, ("label",), "--label_column")
    pair_col = None
    if data_args.text_pair_column is not None:
        pair_col = resolve_column(table, split, data_args.text_pair_column, (), "--text_pair_column")
    assert text_col is not None and label_col is not None
    columns = {"text": text_col, "label": label_col}
    if pair_col is not None:
        columns["text_pair"] = pair_col
    raw = RawSplit(split=split, table=table, text=[], labels=table.columns[label_col], columns=columns)
    raw.text = check_texts(raw, table.columns[text_col], text_col)
    if pair_col is not None:
        raw.text_pair = check_texts(raw, table.columns[pair_col], pair_col)
    return raw


def _held_out(have: set[str], data_args: DataArgs) -> dict[str, float]:
    """Splits to carve out of training: validation when missing; test too when only training was given."""
    fractions = {}
    if "validation" not in have and data_args.validation_split_percentage > 0:
        fractions["validation"] = data_args.validation_split_percentage / 100
    if have == {"train"} and data_args.test_split_percentage > 0:
        fractions["test"] = data_args.test_split_percentage / 100
    return fractions


def _columns(raw: RawSplit, ids: list[Any], rows: list[int] | None = None) -> dict[str, list[Any]]:
    pick = range(len(ids)) if rows is None else rows
    columns: dict[str, list[Any]] = {"text": [raw.text[i] for i in pick]}
    if raw.text_pair is not None:
        columns["text_pair"] = [raw.text_pair[i] for i in pick]
    columns["label"] = [ids[i] for i in pick]
    return columns


def _encode(info: LabelInfo, labels: list[str]) -> dict[str, list[Any]]:
    index = {label: i for i, label in enumerate(labels)}
    if info.multi_label:
        return {s: [sorted(index[n] for n in row) for row in rows] for s, rows in info.names.items()}
    return {s: [index[n] for n in rows] for s, rows in info.names.items()}


def _from_tables(tables: dict[str, Table], data_args: DataArgs, seed: int,
                 source_labels: list[str] | None) -> tuple[datasets.DatasetDict, list[str], bool]:
    """Validate tables, map labels to ids and split: the part every non-bundled source shares."""
    raw = {split: _raw_split(split, table, data_args) for split, table in tables.items()}
    info = normalise_labels(raw, data_args.label_separator)
    train_names = info.names["train"]
    seen = {n for row in train_names for n in row} if info.multi_label else set(train_names)
    labels = label_order(seen, info.numeric)
    if source_labels is not None and seen <= set(source_labels):
        labels = list(source_labels)
    check_label_coverage(raw, info, labels)
    ids = _encode(info, labels)
    parts = {split: _columns(raw[split], ids[split]) for split in raw if split != "train"}
    fractions = _held_out(set(raw), data_args)
    n_train = len(ids["train"])
    for split, fraction in list(fractions.items()):
        if round(n_train * fraction) == 0:
            logger.warning("%d training rows are too few to hold out %.0f%% for %s; no %s split.", n_train,
                           fraction * 100, split, split)
            del fractions[split]
    if fractions:
        strata = [(min(x) if x else -1) if info.multi_label else x for x in ids["train"]]
        chosen = stratified_split_indices(strata, fractions, seed)
        for split, rows in chosen.items():
            parts[split] = _columns(raw["train"], ids["train"], rows)
        logger.info("Split the training data (seed %d): %s", seed, {s: len(r) for s, r in chosen.items()})
    else:
        parts["train"] = _columns(raw["train"], ids["train"])
    ordered = {s: parts[s] for s in SPLITS if s in parts}
    shared = split_overlap({s: p["text"] for s, p in ordered.items()})
    for (a, b), count in shared.items():
        logger.warning("%d texts appear in both %s and %s; evaluation on %s may be optimistic. Deduplicate "
                       "the data to avoid this.", count, a, b, b)
    splits = datasets.DatasetDict({s: _dataset(c, labels, info.multi_label) for s, c in ordered.items()})
    return splits, labels, info.multi_label


def _load_files(data_args: DataArgs, seed: int) -> TaskData:
    files = {"train": data_args.train_file, "validation": data_args.validation_file,
             "test": data_args.test_file}
    tables = {split: read_table(path, split) for split, path in files.items() if path is not None}
    splits, labels, multi = _from_tables(tables, data_args, seed, None)
    described = ", ".join(f"{s}={Path(p).name}" for s, p in files.items() if p is not None)
    return TaskData(splits=splits, labels=labels, multi_label=multi,
                    name=Path(str(data_args.train_file)).name, fingerprint="",
                    description=f"Local data files: {described}")


def _load_hub(data_args: DataArgs, seed: int) -> TaskData:
    name = str(data_args.dataset_name)
    extra = [f for f in ("validation_file", "test_file") if getattr(data_args, f) is not None]
    if extra:
        raise DataError(f"--{extra[0]} is used only with --train_file, not with --dataset_name {name}. Fix: "
                        f"give either --dataset_name or --train_file [--validation_file] [--test_file].")
    tables, class_names = load_hub_tables(name, data_args.dataset_config_name,
                                          data_args.label_column or "label", CORPORA.names())
    splits, labels, multi = _from_tables(tables, data_args, seed, class_names)
    local = Path(name).exists()
    config = data_args.dataset_config_name
    title = f"{name}/{config}" if config else name
    return TaskData(splits=splits, labels=labels, multi_label=multi, name=title, fingerprint="",
                    description=f"Hub dataset {title}" if not local else f"Local dataset {Path(name).name}",
                    hub_dataset_id=None if local else name)


def _subsample(splits: datasets.DatasetDict, data_args: DataArgs, seed: int) -> datasets.DatasetDict:
    out = dict(splits)
    if data_args.train_samples_per_class is not None:
        out["train"] = sample_per_class(out["train"], data_args.train_samples_per_class, seed)
    out["train"] = seeded_subset(out["train"], data_args.max_train_samples, seed)
    if "validation" in out:
        out["validation"] = seeded_subset(out["validation"], data_args.max_eval_samples, seed)
    if "test" in out:
        out["test"] = seeded_subset(out["test"], data_args.max_predict_samples, seed)
    return datasets.DatasetDict(out)


def load_classification_data(data_args: DataArgs, seed: int | None = None) -> TaskData:
    """Load, validate and split the data that ``data_args`` describes.

    Steps: read the source (``bundled:<name>``, a Hub dataset, or local csv/tsv/json/jsonl/parquet files), map
    columns to ``text`` / ``text_pair`` / ``label``, validate every row, split off validation/test when the
    source has none (stratified and seeded by ``validation_split_percentage`` / ``test_split_percentage``;
    a missing test split is carved out only when nothing but training data was given), then apply
    ``train_samples_per_class`` (nested k-shot), and ``max_train_samples`` / ``max_eval_samples`` /
    ``max_predict_samples`` (the first N of a seeded shuffle, nested). Bundled corpora have fixed splits.

    Args:
        data_args: Where the data is and how much of it to use.
        seed: Seed for splitting and sampling; defaults to ``data_args.split_seed``.

    Returns:
        The splits, label names and provenance (name, version, licence, fingerprint).

    Raises:
        DataError: Any problem with the data or its source; the message says where and how to fix it.
    """
    seed = data_args.split_seed if seed is None else seed
    name = data_args.dataset_name
    if name is not None and name.startswith(BUNDLED_PREFIX):
        data = _load_bundled(name[len(BUNDLED_PREFIX):], data_args)
    elif name is not None:
        data = _load_hub(data_args, seed)
    else:
        data = _load_files(data_args, seed)
    data.splits = _subsample(data.splits, data_args, seed)
    data.fingerprint = data_fingerprint(data.splits, data.labels, data.multi_label)
    logger.info("Loaded %s: %s, %d labels%s, fingerprint %s", data.name,
                {s: len(d) for s, d in data.splits.items()}, data.num_labels,
                " (multi-label)" if data.multi_label else "", data.fingerprint[:12])
    return data
