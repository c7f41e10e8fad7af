"""Checks that turn raw rows into canonical ones, with errors that say where the problem is and how to fix it.

Every problem is a :class:`DataError` whose message names the split, the source, the row number as the user
sees it in the file (the line number for csv/tsv/jsonl, counting the header; the record number for parquet and
JSON arrays), the column, the offending value, and the fix.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tlnlp.errors import UserError

__all__ = [
    "DataError",
    "RawSplit",
    "Table",
    "LabelInfo",
    "check_label_coverage",
    "check_texts",
    "label_order",
    "normalise_labels",
    "resolve_column",
    "short",
]

logger = logging.getLogger(__name__)

_MAX_LISTED_ROWS = 5
_INT_PATTERN = re.compile(r"^[+-]?\d+$")


class DataError(UserError, ValueError):
    """A problem with the data: the message names the split, row, column and value, and says how to fix it."""


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut to ``limit`` characters so that a long text does not flood a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


@dataclass
class Table:
    """Rows read from one source, column by column, with the row numbers the user sees.

    Attributes:
        columns: Column name -> one value per row (None where a cell or key is missing).
        row_numbers: For each row, its number as the user sees it (see ``unit``).
        unit: What ``row_numbers`` count: ``"line"`` (csv, tsv, json, jsonl) or ``"row"`` (parquet, a JSON
            object of columns, Hub datasets).
        source: Where the rows come from (a file name or a Hub dataset), for messages.
    """

    columns: dict[str, list[Any]]
    row_numbers: list[int]
    unit: str
    source: str

    def __len__(self) -> int:
        return len(self.row_numbers)


@dataclass
class RawSplit:
    """One split's texts and raw labels, before labels are mapped to class ids.

    Attributes:
        split: ``train``, ``validation`` or ``test``.
        table: The table the rows come from (row numbers and source, for messages).
        text: One text per row.
        labels: One raw label per row (a name, an integer, a list of either, or None).
        text_pair: Second text per row, for pair tasks.
        columns: Canonical name -> source column name, for messages.
    """

    split: str
    table: Table
    text: list[Any]
    labels: list[Any]
    text_pair: list[Any] | None = None
    columns: dict[str, str] = field(default_factory=dict)

    def where(self, rows: Sequence[int], column: str) -> str:
        """``"train data (x.csv), lines 3, 9, column 'text'"``: the place of some rows, for a message."""
        numbers = [self.table.row_numbers[i] for i in rows[:_MAX_LISTED_ROWS]]
        unit = self.table.unit + ("s" if len(rows) > 1 else "")
        listed = ", ".join(str(n) for n in numbers)
        if len(rows) > _MAX_LISTED_ROWS:
            listed += f" and {len(rows) - _MAX_LISTED_ROWS} more"
        return f"{self.split} data ({self.table.source}), {unit} {listed}, column {column!r}"


def resolve_column(table: Table, split: str, wanted: str | None, defaults: Sequence[str], flag: str,
                   required: bool = True) -> str | None:
    """Find the column holding a field: the one the user named, else the first default present.

    Args:
        table: The rows read from the source.
        split: Split name, for messages.
        wanted: Column named by the user (``--text_column`` etc.), or None.
        defaults: Column names tried, in order, when ``wanted`` is None.
        flag: The option that names this column (e.g. ``"--text_column"``), for messages.
        required: Raise when nothing is found; otherwise return None.

    Returns:
        The column's name, or None when it is absent and not required.

    Raises:
        DataError: The column is missing; the message suggests the closest column and lists all of them.
    """
    names = list(table.columns)
    if wanted is not None and wanted in table.columns:
        return wanted
    if wanted is None:
        for name in defaults:
            if name in table.columns:
                return name
        if not required:
            return None
    target = wanted if wanted is not None else defaults[0]
    close = difflib.get_close_matches(target, names, n=1, cutoff=0.5)
    guess = close[0] if close else (names[0] if names else None)
    looked_for = repr(wanted) if wanted is not None else " or ".join(repr(d) for d in defaults)
    hint = f" Did you mean {guess!r}?" if close else ""
    fix = f"pass {flag} {guess}" if guess else f"add a header row with a {target!r} column"
    raise DataError(
        f"{split} data ({table.source}) has no column {looked_for} for {flag}.{hint} "
        f"Columns found: {', '.join(repr(n) for n in names) or 'none'}. Fix: {fix}, or rename the column."
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def check_texts(raw: RawSplit, values: list[Any], column: str) -> list[str]:
    """Check that every row has a non-empty string, and return the texts as ``str``.

    Args:
        raw: The split the texts belong to (for messages).
        values: One value per row.
        column: The source column, for messages.

    Returns:
        The texts, unchanged.

    Raises:
        DataError: A text is null, empty or blank, or not a string.
    """
    missing = [i for i, v in enumerate(values) if _is_missing(v) or (isinstance(v, str) and not v.strip())]
    if missing:
        value = values[missing[0]]
        raise DataError(
            f"{raw.where(missing, column)}: the text is {'null' if _is_missing(value) else 'empty'} "
            f"(value: {short(value)}). Fix: fill in the text or delete these rows."
        )
    wrong = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if wrong:
        value = values[wrong[0]]
        raise DataError(
            f"{raw.where(wrong, column)}: expected text, got {short(value)} ({type(value).__name__}). "
            f"Fix: quote the value as a string, or point --text_column at the column that holds the text."
        )
    return list(values)


@dataclass
class LabelInfo:
    """Label names per row after normalisation.

    Attributes:
        names: Per split, one label name per row (single-label) or one list of names per row (multi-label).
        multi_label: Whether rows carry several labels.
        numeric: Whether every label was an integer (names are then ``str(int)``, sorted numerically).
    """

    names: dict[str, list[Any]]
    multi_label: bool
    numeric: bool


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu" and not hasattr(value, "__len__"):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_PATTERN.match(value.strip()):
        return int(value.strip())
    return None


def _split_cell(value: Any, separator: str | None) -> Any:
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    if separator is not None and isinstance(value, str):
        return [part.strip() for part in value.split(separator) if part.strip()]
    return value


def _check_scalar(raw: RawSplit, i: int, value: Any, column: str) -> None:
    problem = None
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        problem, fix = "the label is missing", "fill in the label or delete the row"
    elif isinstance(value, float) and not value.is_integer():
        problem = "the label is a fractional number, which looks like a regression score, not a class"
        fix = "use class names or integer class ids"
    elif isinstance(value, (dict, list)):
        problem, fix = "the label is nested too deeply", "give one class name or a flat list of class names"
    if problem:
        raise DataError(f"{raw.where([i], column)}: {problem} (value: {short(value)}). Fix: {fix}.")


def _check_one_kind(splits: dict[str, RawSplit], cells: dict[str, list[Any]]) -> None:
    """Refuse labels that mix integer class ids and class names (``1`` on one row, ``positive`` on another)."""
    ints: list[tuple[str, int, Any]] = []
    names: list[tuple[str, int, Any]] = []
    for split, rows in cells.items():
        for i, value in enumerate(rows):
            for item in value if isinstance(value, list) else [value]:
                (ints if _as_int(item) is not None else names).append((split, i, item))
    if not ints or not names:
        return
    odd, usual = (names, ints) if len(names) <= len(ints) else (ints, names)
    (split, i, value), (other_split, j, other) = odd[0], usual[0]
    raw, other_table = splits[split], splits[other_split].table
    kind, others = ("a class name", "integer class ids") if odd is names else ("an integer", "class names")
    raise DataError(
        f"{raw.where([i], raw.columns.get('label', 'label'))}: the label {short(value)} is {kind}, but other rows "
        f"hold {others} (e.g. {short(other)} in {other_split} data, {other_table.unit} "
        f"{other_table.row_numbers[j]}). Fix: use one kind of label in the column: all class names or all "
        f"integer class ids."
    )


def normalise_labels(splits: dict[str, RawSplit], separator: str | None) -> LabelInfo:
    """Turn raw labels into names: multi-label when any row holds a list (or ``separator`` splits a cell).

    Args:
        splits: The raw splits.
        separator: ``--label_separator``: split string cells on it (multi-label csv/tsv).

    Returns:
        The label names per row and the kind of labels.

    Raises:
        DataError: A label is missing, fractional or nested, or the labels mix integer ids and class names.
    """
    cells = {name: [_split_cell(v, separator) for v in raw.labels] for name, raw in splits.items()}
    multi = separator is not None or any(isinstance(v, list) for rows in cells.values() for v in rows)
    flat: list[Any] = []
    for name, raw in splits.items():
        column = raw.columns.get("label", "label")
        for i, value in enumerate(cells[name]):
            items = value if isinstance(value, list) else [value]
            if multi and _is_missing(value):
                raise DataError(f"{raw.where([i], column)}: the labels are missing (value: {short(value)}). "
                                f"Fix: give a list of labels (an empty list for none).")
            for item in items:
                _check_scalar(raw, i, item, column)
            flat.extend(items)
    _check_one_kind(splits, cells)
    numeric = bool(flat) and all(_as_int(v) is not None for v in flat)

    def name_of(value: Any) -> str:
        return str(_as_int(value)) if numeric else str(value).strip()

    names: dict[str, list[Any]] = {}
    for split, rows in cells.items():
        if multi:
            names[split] = [sorted({name_of(v) for v in (r if isinstance(r, list) else [r])}) for r in rows]
        else:
            names[split] = [name_of(v) for v in rows]
    return LabelInfo(names=names, multi_label=multi, numeric=numeric)


def label_order(observed: set[str], numeric: bool) -> list[str]:
    """Class names in a fixed order: numerically for integer labels, else alphabetically."""
    return sorted(observed, key=int) if numeric else sorted(observed)


def check_label_coverage(splits: dict[str, RawSplit], info: LabelInfo, labels: list[str]) -> None:
    """Check that training has at least two classes and that every other split uses only training's classes.

    Args:
        splits: The raw splits (for messages).
        info: Normalised label names per row.
        labels: The class names (training's classes, or the source's own list).

    Raises:
        DataError: One class only in training, or a label in validation/test that training lacks.
    """
    train = splits["train"]
    column = train.columns.get("label", "label")
    rows = info.names["train"]
    seen = {n for r in rows for n in r} if info.multi_label else set(rows)
    if len(seen) < 2:
        only = ", ".join(repr(s) for s in sorted(seen)) or "none"
        raise DataError(
            f"train data ({train.table.source}), column {column!r}: training needs at least two classes, "
            f"found {len(seen)} ({only}) in {len(rows)} rows. Fix: check --label_column (currently "
            f"{column!r}) and that the training file holds examples of every class."
        )
    known = set(labels) & seen
    for split, raw in splits.items():
        if split == "train":
            continue
        per_row = info.names[split]
        as_lists = per_row if info.multi_label else [[n] for n in per_row]
        bad = [i for i, names in enumerate(as_lists) if any(n not in known for n in names)]
        if bad:
            first = per_row[bad[0]]
            unknown = sorted({n for i in bad for n in as_lists[i]} - known)
            where = raw.where(bad, raw.columns.get("label", "label"))
            raise DataError(
                f"{where}: label(s) {', '.join(map(repr, unknown))} "
                f"(value: {short(first)}) never occur in the training data, so no model can learn them. "
                f"Training classes: {', '.join(sorted(known))}. Fix: add training examples of these classes, "
                f"correct the labels, or remove these rows."
            )
