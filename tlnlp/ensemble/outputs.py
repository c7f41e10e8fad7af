"""An ensemble's scores and files: the members' pipelines vote on each split, and the folder is written.

The ensemble scores a split with :class:`tlnlp.inference.SoftVotingPipeline` over the members' own pipelines
(``load_pipeline`` of each member folder), so the scores in its ``predictions.jsonl`` are the ones
``load_pipeline(<ensemble folder>)`` gives. Its folder then holds what a run's folder holds, less the weights:
``eval_results.json``, ``test_results.json``, ``predictions.jsonl``, ``confusion_matrix.png``, ``all_results.json``
(the ensemble's metrics, each member's as ``member_<seed>_<metric>`` and their mean as ``members_mean_<metric>``),
``ensemble.json`` (members, weights, labels, how they combine), ``run_config.yaml``, ``environment.json`` and the card.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.config import write_run_config
from tlnlp.config.run_folder import write_text_atomic
from tlnlp.ensemble.card import ensemble_card
from tlnlp.ensemble.members import Member
from tlnlp.inference import ENSEMBLE_MANIFEST, SoftVotingPipeline, load_pipeline
from tlnlp.report import plot_evaluation
from tlnlp.runs import environment_info, write_json
from tlnlp.tasks import ConfusionFigure, Evaluation, classification_metrics, predictions_from_logits
from tlnlp.tasks.classification.predictions import gold_matrix, logits_from_probabilities, write_predictions

__all__ = ["COMBINE", "EnsembleResult", "member_metrics", "score_splits", "split_inputs", "voting_pipeline",
           "write_ensemble"]

logger = logging.getLogger(__name__)

#: How the members' answers combine (``ensemble.json``'s ``combine``).
COMBINE = "mean_probabilities"
#: The splits an ensemble scores, with the prefix of their metrics.
_PREFIXES = {"validation": "eval", "test": "test"}
#: Numbers of a member's results that describe its run, not its quality (left out of the members' metrics).
_RUN_NUMBERS = ("_runtime", "_per_second", "_samples", "_truncated_rows", "_long_rows", "_windows")


@dataclass
class EnsembleResult:
    """What an ensemble run produced, for :func:`write_ensemble`.

    Attributes:
        output_dir: The ensemble's folder.
        data: The task's data (its ``validation`` and ``test`` splits were scored).
        members: The members, in seed order.
        probabilities: Split -> ``rows x labels`` soft-voted label probabilities.
        config_objects: The run's argument dataclasses (written to ``run_config.yaml``).
        base_model: The model every member started from.
        method: The members' ``--method``.
        threshold: Multi-label: a label is predicted above this probability.
        recipe: The recipe that ran (the card's and ``run_config.yaml``'s rerun command).
        extra: More JSON-able facts for ``ensemble.json`` and ``all_results.json``.
    """

    output_dir: Path
    data: Any
    members: list[Member]
    probabilities: dict[str, np.ndarray]
    config_objects: tuple[Any, ...]
    base_model: str
    method: str
    threshold: float = 0.5
    recipe: str = "classification"
    extra: dict[str, Any] = field(default_factory=dict)


def voting_pipeline(members: list[Member], labels: list[str], device: Any = None,
                    batch_size: int = 32) -> SoftVotingPipeline:
    """The members' own pipelines (``load_pipeline`` of each folder), voting with equal weights."""
    pipes = [load_pipeline(member.folder, device=device, batch_size=batch_size) for member in members]
    return SoftVotingPipeline(pipes, [1.0] * len(members), labels)


def split_inputs(rows: Any) -> list[Any]:
    """A split's rows as the pipeline takes them: texts, or ``{"text", "text_pair"}`` dicts for pairs."""
    if "text_pair" not in rows.column_names:
        return list(rows["text"])
    return [{"text": text, "text_pair": pair} for text, pair in zip(rows["text"], rows["text_pair"], strict=True)]


def score_splits(voter: SoftVotingPipeline, data: Any) -> dict[str, np.ndarray]:
    """Each of the data's validation and test splits, soft-voted: split -> ``rows x labels`` probabilities."""
    return {split: voter.scores(split_inputs(data.splits[split])) for split in _PREFIXES if split in data.splits}


def member_metrics(members: list[Member]) -> dict[int, dict[str, float]]:
    """Each member's numbers from its ``all_results.json`` (``train_*``, ``eval_*``, ``test_*``), by seed."""
    found: dict[int, dict[str, float]] = {}
    for member in members:
        saved = json.loads((member.folder / "all_results.json").read_text(encoding="utf-8"))
        found[member.seed] = {key: value for key, value in saved.items() if key.startswith(("train_", "eval_", "test_"))
                              and isinstance(value, (int, float)) and not isinstance(value, bool)}
    return found


def _is_metric(key: str) -> bool:
    return key.startswith(("eval_", "test_")) and not key.endswith(_RUN_NUMBERS)


def _flat_member_metrics(members: dict[int, dict[str, float]]) -> dict[str, float]:
    """``member_<seed>_<metric>`` for every member's eval/test metric and training time, and the members' mean."""
    flat: dict[str, float] = {}
    for seed, metrics in members.items():
        flat.update({f"member_{seed}_{key}": value for key, value in metrics.items()
                     if _is_metric(key) or key == "train_runtime"})
    shared = set.intersection(*(set(m) for m in members.values())) if members else set()
    for key in sorted(k for k in shared if _is_metric(k)):
        flat[f"members_mean_{key}"] = float(np.mean([metrics[key] for metrics in members.values()]))
    return flat


def _score_split(result: EnsembleResult, split: str) -> tuple[dict[str, float], Evaluation]:
    """One split's metrics from its voted probabilities; the test split's predictions and confusion matrix too."""
    data, out, prefix = result.data, result.output_dir, _PREFIXES[split]
    rows = data.splits[split]
    logits = logits_from_probabilities(result.probabilities[split], len(rows), data.num_labels, data.multi_label)
    gold = gold_matrix(rows, data.num_labels, data.multi_label)
    preds = predictions_from_logits(logits, data.multi_label, result.threshold)
    values = classification_metrics(gold, preds, data.num_labels, data.multi_label)
    metrics = {f"{prefix}_{name}": float(value) for name, value in values.items()}
    metrics[f"{prefix}_samples"] = len(rows)
    write_json(out / f"{prefix}_results.json", metrics)
    figures = []
    if split == "test":
        write_predictions(out / "predictions.jsonl", rows, logits, list(data.labels), data.multi_label,
                          result.threshold)
        if not data.multi_label:
            figures.append(ConfusionFigure(gold=gold, predicted=np.asarray(preds), labels=list(data.labels),
                                           path=out / "confusion_matrix.png", title=f"{data.name} (test, ensemble)"))
    return metrics, Evaluation(metrics, figures)


def write_ensemble(result: EnsembleResult) -> dict[str, Any]:
    """Score the voted splits and write every file of the ensemble's folder; main process only.

    Returns:
        Every number of ``all_results.json``: the ensemble's ``eval_*``/``test_*`` metrics, ``ensemble_size``, and
        the members' metrics (``member_<seed>_<metric>``, ``members_mean_<metric>``).
    """
    out, data = result.output_dir, result.data
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {}
    for split in result.probabilities:
        found, evaluation = _score_split(result, split)
        metrics.update(found)
        plot_evaluation(evaluation)
    members = member_metrics(result.members)
    metrics.update({"ensemble_size": len(result.members), **_flat_member_metrics(members)})
    manifest = {"members": [m.name for m in result.members], "seeds": [m.seed for m in result.members],
                "weights": [1.0] * len(result.members), "combine": COMBINE, "labels": list(data.labels),
                "multi_label": bool(data.multi_label), "threshold": result.threshold, "method": result.method,
                **result.extra}
    write_json(out / ENSEMBLE_MANIFEST, manifest)
    write_json(out / "all_results.json", {**metrics, "ensemble_seeds": manifest["seeds"], **result.extra})
    write_run_config(out, *result.config_objects, recipe=result.recipe)
    extra = {"data_name": data.name, "data_version": getattr(data, "version", None), "labels": list(data.labels),
             "multi_label": bool(data.multi_label), "ensemble_seeds": manifest["seeds"]}
    write_json(out / "environment.json", environment_info(result.members[0].seed, data.fingerprint, extra))
    write_text_atomic(out / "README.md", ensemble_card(result, metrics, members))
    return metrics
