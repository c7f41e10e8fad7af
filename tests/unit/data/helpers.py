"""Helpers for the data tests: tiny rows, writers for csv and jsonl, DataArgs from keywords."""

from __future__ import annotations

import json
from typing import Any

from tlnlp.config import DataArgs

POSITIVE = ["great film", "loved it", "wonderful acting", "a joy", "superb plot", "brilliant", "so good",
            "fantastic cast", "moving story", "a delight", "terrific", "beautiful score"]
NEGATIVE = ["awful film", "hated it", "wooden acting", "a bore", "dull plot", "dreadful", "so bad",
            "terrible cast", "pointless story", "a mess", "tedious", "ugly sets"]


def sentiment_rows(n_per_class: int = 12) -> list[dict[str, Any]]:
    """Alternating positive/negative rows with distinct texts."""
    rows = []
    for i in range(n_per_class):
        rows.append({"text": f"{POSITIVE[i % len(POSITIVE)]} {i}", "label": "positive"})
        rows.append({"text": f"{NEGATIVE[i % len(NEGATIVE)]} {i}", "label": "negative"})
    return rows


def to_csv(rows: list[dict[str, Any]], sep: str = ",") -> str:
    """A tiny CSV/TSV writer (quotes every text cell) for test fixtures."""
    header = list(rows[0])
    lines = [sep.join(header)]
    for row in rows:
        cells = []
        for key in header:
            value = row[key]
            cells.append('"' + str(value).replace('"', '""') + '"' if isinstance(value, str) else str(value))
        lines.append(sep.join(cells))
    return "\n".join(lines) + "\n"


def to_jsonl(rows: list[dict[str, Any]]) -> str:
    """One JSON object per line."""
    return "".join(json.dumps(row) + "\n" for row in rows)


def make_args(**kwargs: Any) -> DataArgs:
    """DataArgs from keywords."""
    return DataArgs(**kwargs)
