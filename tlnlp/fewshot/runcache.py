"""Finished few-shot runs stored as JSON, so that an interrupted evaluation resumes where it stopped.

A run is stored under a key that covers everything its numbers depend on: the model (name and config), the
prompt spec, the demonstrations (their texts and labels, in order), the evaluation rows, the label names, the
content-free inputs and the scoring path. A stored run with another key is never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.config.run_folder import ensure_claimed

__all__ = ["load_run", "run_key", "save_run"]

logger = logging.getLogger(__name__)


def run_key(model: Any, spec: Any, demos: Sequence[Any], rows: Sequence[Any], labels: Sequence[str],
            content_free: Sequence[str]) -> str:
    """sha256 of everything a run's probabilities depend on."""
    config = getattr(model, "config", None)
    payload = {
        "model": getattr(model, "name_or_path", ""), "config": config.to_json_string() if config is not None else "",
        "spec": {k: v for k, v in dataclasses.asdict(spec).items() if k != "source"},
        "demos": [[row, label] for row, label in demos], "rows": list(rows), "labels": list(labels),
        "content_free": list(content_free),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _path(folder: Path, seed: int, order: int) -> Path:
    return folder / f"run_seed{seed}_order{order}.json"


def load_run(folder: str | os.PathLike[str] | None, seed: int, order: int, key: str) -> dict[str, Any] | None:
    """The stored run for ``(seed, order)`` when its key matches, else None."""
    if folder is None or not _path(Path(folder), seed, order).is_file():
        return None
    stored = json.loads(_path(Path(folder), seed, order).read_text(encoding="utf-8"))
    if stored.get("key") != key:
        logger.info("Stored run seed %d order %d was made with other settings; scoring it again.", seed, order)
        return None
    stored["probabilities"] = {k: np.asarray(v, dtype=np.float64) for k, v in stored["probabilities"].items()}
    logger.info("Reusing the stored run seed %d order %d from %s", seed, order, folder)
    return stored


def save_run(folder: str | os.PathLike[str] | None, seed: int, order: int, key: str, run: dict[str, Any]) -> None:
    """Write a run whole (temporary file, then rename)."""
    if folder is None:
        return
    ensure_claimed(folder)  # inside a run's output folder: locked and marked unfinished before its first file
    target = _path(Path(folder), seed, order)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = {**run, "key": key, "probabilities": {k: np.asarray(v).tolist() for k, v in run["probabilities"].items()}}
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(data), encoding="utf-8")
    partial.replace(target)
