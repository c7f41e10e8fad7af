"""``finish_evaluation``: write the outputs of a run that scored a labelled split without training.

Zero-shot and few-shot baselines call it so that their folders hold the same files as a fine-tuned run
(results JSONs, predictions, confusion matrix, config, environment, card) and line up in one table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.config import write_run_config
from tlnlp.training.outputs import environment_info, reproduce_command, write_json, write_predictions

__all__ = ["finish_evaluation"]

logger = logging.getLogger(__name__)

_EPS = 1e-12


def _check_scores(scores: Any, rows: int, num_labels: int, multi_label: bool) -> np.ndarray:
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
    return np.clip(array, _EPS, 1 - _EPS) if multi_label else np.clip(array, _EPS, 1.0)


def _as_logits(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    # write_predictions turns logits back into probabilities with a softmax/sigmoid; these invert them exactly
    return np.log(probs / (1 - probs)) if multi_label else np.log(probs)


def _gold(split_rows: Any, num_labels: int, multi_label: bool) -> np.ndarray:
    labels = split_rows["label"]
    if not multi_label:
        return np.asarray(labels, dtype=np.int64)
    matrix = np.zeros((len(labels), num_labels), dtype=np.int64)
    for i, ids in enumerate(labels):
        matrix[i, list(ids)] = 1
    return matrix


def _write_card(out: Path, data: Any, *, method: str, method_description: str, model_name_or_path: str,
                metrics: Mapping[str, float], recipe: str, config: Mapping[str, Any],
                extra_sections: Mapping[str, str] | None) -> None:
    from tlnlp.hub import build_model_card

    task = "multi-label classification" if data.multi_label else "text-classification"
    card = build_model_card(
        model_name=out.name, base_model=model_name_or_path, task=task, labels=data.labels, method=method,
        method_description=method_description, dataset_name=data.name, dataset_description=data.description,
        dataset_license=data.license, hub_dataset_id=data.hub_dataset_id, metrics=dict(metrics),
        hyperparameters=dict(config),
        command=reproduce_command() + "\n# or, from this folder's settings:\n"
                f"accelerate launch recipes/{recipe}.py --config run_config.yaml",
        tags=["baseline", "no-training"], extra_sections=dict(extra_sections or {}),
    )
    card.save(str(out / "README.md"))


def finish_evaluation(
    output_dir: str | Path,
    data: Any,
    split: str,
    scores: Any,
    *,
    method: str,
    method_description: str,
    model_name_or_path: str,
    config_objects: Sequence[Any],
    recipe: str,
    multi_label_threshold: float = 0.5,
    extra_results: Mapping[str, Any] | None = None,
    extra_sections: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Score ``split`` from per-label probabilities and write every output of an evaluation-only run.

    Written into ``output_dir``: ``{split}_results.json`` and ``all_results.json`` (metrics plus
    ``extra_results``), ``predictions.jsonl``, ``confusion_matrix.png`` (single-label), ``run_config.yaml``,
    ``environment.json`` and a results card ``README.md``. Files are written whole (temporary file, then rename).

    Args:
        output_dir: The run's folder (check it first with :func:`tlnlp.training.prepare_output_dir`).
        data: The :class:`tlnlp.data.TaskData` that was scored.
        split: Which split of ``data.splits`` the rows of ``scores`` belong to, e.g. ``"test"``.
        scores: ``rows x num_labels`` probabilities in label-id order: a softmax per row for single-label data,
            independent probabilities per label for multi-label data.
        method: Method name for the card and tags, e.g. ``"zero_shot_nli"``.
        method_description: One or two sentences on how the scores were obtained.
        model_name_or_path: The model that produced the scores (Hub id, folder or ``bundled:<name>``).
        config_objects: The parsed argument dataclasses; written to ``run_config.yaml`` without secrets.
        recipe: Recipe file stem for the reproduce line, e.g. ``"zero_shot"``.
        multi_label_threshold: Multi-label: a label is predicted when its probability exceeds this.
        extra_results: JSON-able extras for the results files (e.g. a prompt spec version, per-seed results).
        extra_sections: Extra card sections, title -> markdown.

    Returns:
        The metrics with the split as prefix (``test_accuracy``, ``test_f1_macro``, ..., ``test_samples``).

    Raises:
        ValueError: Unknown split, or scores of the wrong shape or not probabilities.
    """
    from tlnlp.tasks import classification_metrics, predictions_from_logits

    if split not in data.splits:
        raise ValueError(f"split={split!r} is not in the data; it has: {', '.join(data.splits)}.")
    rows = data.splits[split]
    probs = _check_scores(scores, len(rows), data.num_labels, data.multi_label)
    logits = _as_logits(probs, data.multi_label)
    gold = _gold(rows, data.num_labels, data.multi_label)
    preds = predictions_from_logits(logits, data.multi_label, multi_label_threshold)
    values = classification_metrics(gold, preds, data.num_labels, data.multi_label)
    metrics: dict[str, float] = {f"{split}_{name}": float(value) for name, value in values.items()}
    metrics[f"{split}_samples"] = len(rows)

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {**metrics, **dict(extra_results or {})}
    write_json(out / f"{split}_results.json", results)
    write_json(out / "all_results.json", results)
    write_predictions(out / "predictions.jsonl", rows, logits, data.labels, data.multi_label, multi_label_threshold)
    if not data.multi_label:
        from tlnlp.report import plot_confusion_matrix

        plot_confusion_matrix(gold, preds, data.labels, out / "confusion_matrix.png", title=f"{data.name} ({split})")
    path = write_run_config(out, *config_objects)
    from tlnlp.config import resolved_config

    config = resolved_config(*config_objects)
    seed = int(config.get("seed", 0) or 0)
    write_json(out / "environment.json", environment_info(seed, data.fingerprint, {
        "data_name": data.name, "data_version": data.version, "split": split, "labels": data.labels,
        "multi_label": data.multi_label}))
    _write_card(out, data, method=method, method_description=method_description,
                model_name_or_path=model_name_or_path, metrics=metrics, recipe=recipe,
                config={k: v for k, v in config.items() if k not in ("output_dir",)},
                extra_sections=extra_sections)
    logger.info("Evaluation outputs written to %s (config: %s)", out, path.name)
    return metrics
