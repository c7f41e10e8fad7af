"""Cells of the ladder (strategy x budget x seed), keyed by a hash of their configuration and cached on disk.

A cell's key covers everything in its configuration that changes its result: the strategy and its settings, the
budget, the seed, the model and the data fingerprint. A finished cell is written atomically as one JSON file named
by its key, so a killed run (or one of several processes writing cells at once) loses at most the cells in
progress, and a later run with the same settings reads it back instead of recomputing it. The record also holds
the hash of the code that computed it (:func:`tlnlp.compare.code_keys.strategy_code`): a cell whose code has
changed since is stale and runs again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

__all__ = ["CELL_SCHEMA", "Cell", "CellCache", "cached_model", "cell_key"]

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
        code: Hash of the code that computes it (a cached record with another hash is stale).
    """

    strategy: str
    budget: int | str
    seed: int
    config: dict[str, Any] = field(default_factory=dict)
    code: str = ""

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

    def get(self, key: str, code: str | None = None) -> dict[str, Any] | None:
        """The cached result of a cell, or None when it has not finished (a corrupt file counts as missing).

        With ``code``, a record computed by other code (another hash, or none recorded) counts as missing too.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            logger.warning("Ignoring unreadable cache file %s (%s); the cell will run again.", path, err)
            return None
        if record.get("key") != key:
            return None
        if code is not None and record.get("code") != code:
            logger.info("Cell %s was computed by other code (%s, now %s); it runs again.", key,
                        record.get("code", "no code hash"), code)
            return None
        return record

    def put(self, key: str, record: dict[str, Any], code: str | None = None) -> Path:
        """Write a finished cell atomically (a temporary file, then a rename); returns its path.

        Several processes may write cells into one folder at once: each writes its own temporary file, and a
        reader only ever sees a whole cell.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        stored = {**record, "key": key} if code is None else {**record, "key": key, "code": code}
        tmp.write_text(json.dumps(stored, indent=2, sort_keys=True, default=float), encoding="utf-8")
        tmp.replace(path)
        return path

    def keys(self) -> list[str]:
        """Keys of every finished cell in the folder."""
        return sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []


def cached_model(root: Path, kind: str, settings: dict[str, Any], train: Callable[[Path, Path], dict[str, Any]],
                 done: str = "done.json") -> Path:
    """A model that cells share (a source model, a DANN model), trained once and kept at ``<root>/<kind>/<key>``.

    ``train(folder, scratch)`` saves the model into ``folder`` (not yet there) and returns its record, written
    into it as ``done``; ``scratch`` is a temporary folder for the run's other files. The model is trained in a
    temporary folder beside the kept ones and renamed into place, so an interrupted training leaves nothing that
    reads as finished, and a lock per key makes parallel cells (``--workers``, Ray) train it once.
    """
    cache = Path(root) / kind
    folder = cache / cell_key(settings)
    locks = Path(root) / "locks"  # beside the models: a model folder holds finished models only
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"{kind}-{folder.name}.lock")):
        if not (folder / done).is_file():
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=f"{kind}-", dir=cache) as tmp:
                staging = Path(tmp) / "model"
                record = train(staging, Path(tmp))
                (staging / done).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
                shutil.rmtree(folder, ignore_errors=True)
                staging.rename(folder)
    return folder
