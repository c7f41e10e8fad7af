"""Evaluation-only runs: score a trained classifier's folder on the validation and test splits, training nothing.

What ``--do_eval`` / ``--do_predict`` without ``--do_train`` run in the classification recipe: the saved run is
loaded as a pipeline (:func:`tlnlp.inference.load_pipeline`: full models, adapters and heads on sentence embeddings
alike), each requested split is scored through the ``evaluate`` module that ships with tlnlp, and the folder gets
``eval_results.json`` / ``test_results.json`` (plus ``predictions.jsonl`` for the test split), ``all_results.json``,
``run_config.yaml`` and ``environment.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.config import write_run_config
from tlnlp.config.run_folder import close_output_dir, ensure_claimed
from tlnlp.errors import UserError
from tlnlp.inference import load_pipeline
from tlnlp.runs.files import environment_info, write_json
from tlnlp.tasks import load_metric
from tlnlp.tasks.classification.predictions import write_predictions

__all__ = ["SavedModelError", "evaluate_saved_classifier", "pipeline_probabilities"]

logger = logging.getLogger(__name__)

_SPLITS = (("evaluate", "validation", "eval"), ("predict", "test", "test"))


class SavedModelError(UserError, ValueError):
    """The saved model does not fit the data (other label names), or a requested split is missing."""


def _inputs(rows: Any) -> list[Any]:
    if "text_pair" in rows.column_names:
        return [{"text": t, "text_pair": p} for t, p in zip(rows["text"], rows["text_pair"], strict=True)]
    return list(rows["text"])


def pipeline_probabilities(pipe: Any, rows: Any, labels: list[str], batch_size: int = 32) -> np.ndarray:
    """``rows x labels`` scores of a text-classification pipeline, columns in ``labels``' order.

    Raises:
        SavedModelError: the pipeline answers with a label name that ``labels`` lacks.
    """
    index = {name: i for i, name in enumerate(labels)}
    answers = pipe(_inputs(rows), top_k=None, batch_size=batch_size)
    scores = np.zeros((len(rows), len(labels)), dtype=np.float64)
    for i, ranked in enumerate(answers):
        for answer in [ranked] if isinstance(ranked, dict) else ranked:
            if answer["label"] not in index:
                raise SavedModelError(f"The model predicts label {answer['label']!r}, which the data does not have "
                                      f"(its labels: {', '.join(labels)}). Evaluate on data with the model's labels.")
            scores[i, index[answer["label"]]] = answer["score"]
    return scores


def _score_split(pipe: Any, data: Any, split: str, prefix: str, threshold: float) -> tuple[dict[str, float], Any]:
    rows = data.splits[split]
    start = time.perf_counter()
    probabilities = pipeline_probabilities(pipe, rows, list(data.labels))
    seconds = time.perf_counter() - start
    if data.multi_label:
        predictions = (probabilities > threshold).astype(int).tolist()
        references = [[int(j in set(row)) for j in range(data.num_labels)] for row in rows["label"]]
    else:
        predictions, references = probabilities.argmax(axis=1).tolist(), list(rows["label"])
    metric = load_metric("classification", config_name="multilabel" if data.multi_label else None)
    values = metric.compute(predictions=predictions, references=references, num_labels=data.num_labels)
    found = {f"{prefix}_{name}": float(value) for name, value in values.items()}
    found.update({f"{prefix}_samples": len(rows), f"{prefix}_runtime": round(seconds, 4),
                  f"{prefix}_samples_per_second": round(len(rows) / max(seconds, 1e-9), 3)})
    return found, probabilities


def _logits(probabilities: np.ndarray, multi_label: bool) -> np.ndarray:
    clipped = np.clip(probabilities, 1e-12, 1 - 1e-12)
    return np.log(clipped / (1 - clipped)) if multi_label else np.log(clipped)


def evaluate_saved_classifier(model_args: Any, data: Any, train_args: Any, stages: Any,
                              config_objects: tuple[Any, ...]) -> dict[str, float]:
    """Score ``model_args.model_name_or_path`` (a trained run's folder or any classifier) on the requested splits.

    Args:
        model_args: ``model_name_or_path`` names the trained model.
        data: The loaded classification data (its label names must be the model's).
        train_args: ``output_dir`` receives the results; ``seed`` is recorded.
        stages: :class:`tlnlp.training.RunStages` with ``evaluate`` and/or ``predict`` set.
        config_objects: The parsed arguments, written to ``run_config.yaml``.

    Returns:
        ``eval_*`` and/or ``test_*`` metrics.

    Raises:
        SavedModelError: a requested split is missing, or the model's labels are not the data's.
    """
    out = Path(train_args.output_dir)
    pipe = load_pipeline(model_args.model_name_or_path)
    ensure_claimed(out)  # locked and marked unfinished before the first result lands
    threshold = float(getattr(config_objects[1], "multi_label_threshold", 0.5))
    metrics: dict[str, float] = {}
    for stage, split, prefix in _SPLITS:
        if not getattr(stages, stage):
            continue
        if split not in data.splits:
            raise SavedModelError(f"do_{'eval' if prefix == 'eval' else 'predict'}=True, but the data has no {split} "
                                  f"split (it has: {', '.join(data.splits)}). Give --{split}_file, or a dataset "
                                  f"with a {split} split.")
        found, probabilities = _score_split(pipe, data, split, prefix, threshold)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / f"{prefix}_results.json", found)
        if split == "test":
            write_predictions(out / "predictions.jsonl", data.splits[split], _logits(probabilities, data.multi_label),
                              list(data.labels), data.multi_label, threshold)
        metrics.update(found)
    write_json(out / "all_results.json", metrics)
    write_run_config(out, *config_objects, recipe="classification")
    write_json(out / "environment.json", environment_info(int(train_args.seed), data.fingerprint, {
        "data_name": data.name, "evaluated_model": str(model_args.model_name_or_path)}))
    logger.info("Evaluated %s; results in %s", model_args.model_name_or_path, out)
    close_output_dir(out)  # every file is written
    return metrics
