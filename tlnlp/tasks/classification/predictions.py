"""Classification predictions: ``predictions.jsonl`` (one line per row) from logits or from label probabilities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["gold_matrix", "logits_from_probabilities", "write_predictions"]

_EPS = 1e-12


def write_predictions(path: Path, dataset: Any, logits: np.ndarray, labels: list[str], multi_label: bool,
                      threshold: float = 0.5) -> list[int] | list[list[int]]:
    """Write one JSON line per row: text, gold label(s), predicted label(s) and scores; returns the predictions."""
    if multi_label:
        probs = 1.0 / (1.0 + np.exp(-logits))
    else:
        shifted = logits - logits.max(axis=-1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    preds: list[Any] = []
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for i, row in enumerate(dataset):
            record: dict[str, Any] = {"id": i, "text": row["text"]}
            if "text_pair" in row:
                record["text_pair"] = row["text_pair"]
            if multi_label:
                pred = [j for j, p in enumerate(probs[i]) if p > threshold]
                record["labels"] = [labels[j] for j in row["label"]]
                record["predicted_labels"] = [labels[j] for j in pred]
            else:
                pred = int(probs[i].argmax())
                record["label"] = labels[row["label"]]
                record["prediction"] = labels[pred]
                record["score"] = round(float(probs[i][pred]), 6)
            record["scores"] = {labels[j]: round(float(p), 6) for j, p in enumerate(probs[i])}
            preds.append(pred)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return preds


def logits_from_probabilities(scores: Any, rows: int, num_labels: int, multi_label: bool) -> np.ndarray:
    """Check ``rows x num_labels`` label probabilities and turn them into the logits they come from.

    :func:`write_predictions` turns logits back into probabilities with a softmax (single-label) or a sigmoid
    (multi-label); this inverts them exactly.

    Raises:
        ValueError: Wrong shape, non-finite values, values outside [0, 1], or single-label rows that do not sum
            to 1.
    """
    array = np.asarray(scores, dtype=np.float64)
    if array.shape != (rows, num_labels):
        raise ValueError(f"scores has shape {array.shape}; expected (rows, labels) = ({rows}, {num_labels}): one "
                         "score per label for every row of the split, in label-id order.")
    if not np.isfinite(array).all():
        raise ValueError("scores holds NaN or infinite values; check the scorer's output.")
    if array.min() < -1e-6 or array.max() > 1 + 1e-6:
        raise ValueError(f"scores must be probabilities in [0, 1]; got values from {array.min():.4g} to "
                         f"{array.max():.4g}. Apply a softmax (single-label) or sigmoid (multi-label) first.")
    if not multi_label and not np.allclose(array.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("single-label scores must sum to 1 over the labels of each row (a softmax).")
    if multi_label:
        probs = np.clip(array, _EPS, 1 - _EPS)
        return np.log(probs / (1 - probs))
    return np.log(np.clip(array, _EPS, 1.0))


def gold_matrix(split_rows: Any, num_labels: int, multi_label: bool) -> np.ndarray:
    """The gold labels of a split: class ids, or an ``n x num_labels`` 0/1 matrix for multi-label data."""
    labels = split_rows["label"]
    if not multi_label:
        return np.asarray(labels, dtype=np.int64)
    matrix = np.zeros((len(labels), num_labels), dtype=np.int64)
    for i, ids in enumerate(labels):
        matrix[i, list(ids)] = 1
    return matrix
