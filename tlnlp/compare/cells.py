"""Cells of the ladder (strategy x budget x seed), keyed by a hash of their configuration and cached on disk.

A cell's key covers everything that changes its result: the strategy and its settings, the budget, the seed, the
model and the data fingerprint. A finished cell is written atomically as one JSON file named by its key, so a
killed run loses at most the cell in progress, and a later run with the same settings reads it back instead of
recomputing it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CELL_SCHEMA", "Cell", "CellCache", "cell_key"]

logger = logging.getLogger(__name__)

#: Bumped when what a cell measures changes, so old cache entries are not mixed with new ones.
CELL_SCHEMA = 1


def cell_key(config: dict[str, Any]) -> str:
    """sha256 (first 20 hex digits) of the cell's configuration as canonical JSON."""
    text = json.dumps({"schema": CELL_SCHEMA, **config}, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass
class Cell:
    """One unit of work: a strategy at one label budget and one seed.

    Attributes:
        strategy: Strategy name (see :data:`tlnlp.compare.STRATEGIES`).
        budget: Labelled examples per class (int), ``"all"``, or 0 for strategies that use no labels.
        seed: Seed of the k-shot draw and the initialisation.
        config: Everything that determines the result; hashed into :attr:`key`.
    """

    strategy: str
    budget: int | str
    seed: int
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Hash of the configuration (identical cells share it, whatever run asks for them)."""
        return cell_key(self.config)

    @property
    def label(self) -> str:
        """Human-readable name for logs and progress bars."""
        return f"{self.strategy} | k={self.budget} | seed={self.seed}"


class CellCache:
    """Finished cells as ``<key>.json`` files in one folder.

    Args:
        folder: Where the files live (created on first write).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """File of the cell with this key."""
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached result of a cell, or None when it has not finished (a corrupt file counts as missing)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            logger.warning("Ignoring unreadable cache file %s (%s); the cell will run again.", path, err)
            return None
        return record if record.get("key") == key else None

    def put(self, key: str, record: dict[str, Any]) -> Path:
        """Write a finished cell atomically (temporary file, then rename); returns its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({**record, "key": key}, indent=2, sort_keys=True, default=float), encoding="utf-8")
        tmp.replace(path)
        return path

    def keys(self) -> list[str]:
        """Keys of every finished cell in the folder."""
        return sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []
