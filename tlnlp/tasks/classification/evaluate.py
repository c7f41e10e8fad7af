"""Score a classification run: the Trainer's validation and test splits, or a scorer's label probabilities."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.tasks.base import ConfusionFigure, Evaluation, run_setting
from tlnlp.tasks.classification.metrics import classification_metrics, predictions_from_logits
from tlnlp.tasks.classification.predictions import gold_matrix, logits_from_probabilities, write_predictions

__all__ = ["evaluate_fitted", "evaluate_probabilities", "evaluate_trained", "long_text_section"]

_PREDICTIONS = "predictions.jsonl"
_CONFUSION = "confusion_matrix.png"
_LENGTH_KEYS = ("truncated_rows", "long_rows", "windows")
_SPLIT_NAMES = {"train": "training", "eval": "validation", "test": "test"}


def _lengths(ctx: Any, prefix: str) -> dict[str, int]:
    """The split's long-row counts that tokenisation left in ``ctx.results`` (``eval_truncated_rows``...)."""
    return {f"{prefix}_{key}": ctx.results[f"{prefix}_{key}"] for key in _LENGTH_KEYS
            if f"{prefix}_{key}" in getattr(ctx, "results", {})}


def long_text_section(ctx: Any) -> str:
    """Card text on rows longer than ``max_seq_length``: how many were cut, or how windows classified them.

    Returns:
        Markdown, or ``""`` when no counted row was too long and the run did not use windows.
    """
    found = getattr(ctx, "results", {})
    limit = run_setting(ctx, "max_seq_length")
    if run_setting(ctx, "long_text", "truncate") == "chunk":
        stride = run_setting(ctx, "long_text_stride")
        counts = ", ".join(f"{found[f'{p}_long_rows']} {name}" for p, name in _SPLIT_NAMES.items()
                           if f"{p}_long_rows" in found)
        return (f"Texts longer than {limit} tokens were classified whole (`--long_text chunk`): windows of {limit} "
                f"tokens overlapping by {stride}, each trained with its row's label; a row's logits are the mean of "
                f"its windows' logits, in evaluation, predictions and `load_pipeline`."
                + (f" Rows longer than {limit} tokens: {counts}." if counts else ""))
    cut = {name: found[f"{p}_truncated_rows"] for p, name in _SPLIT_NAMES.items()
           if found.get(f"{p}_truncated_rows")}
    if not cut:
        return ""
    counts = ", ".join(f"{n} {name}" for name, n in cut.items())
    if getattr(ctx, "fitted", None) is not None:  # no windows for sentence embeddings
        return f"Rows longer than the sentence encoder takes (at most {limit} tokens) were cut: {counts} rows."
    return (f"Rows longer than {limit} tokens (`--max_seq_length`) were cut to that length: {counts} rows. "
            "`--long_text chunk` classifies them whole by sliding windows.")


def _figure(data: Any, split: str, gold: Any, preds: Any, out: Path) -> list[ConfusionFigure]:
    if data.multi_label:
        return []
    return [ConfusionFigure(gold=np.asarray(gold), predicted=np.asarray(preds), labels=list(data.labels),
                            path=out / _CONFUSION, title=f"{data.name} ({split})")]


def evaluate_trained(ctx: Any) -> Evaluation:
    """Evaluate the validation split and predict the test split with the run's Trainer.

    Writes (Trainer): ``eval_results.json``, ``test_results.json``; (main process) ``predictions.jsonl`` for the
    test split. The confusion matrix of the test split comes back as a figure.

    Args:
        ctx: The run's context (``trained.trainer``, ``trained.datasets``, ``data``, ``output_dir``).

    Returns:
        ``eval_*`` and ``test_*`` metrics (with ``*_samples``, counted in rows, and the long-row counts of
        ``ctx.results``), and the test split's confusion matrix. With ``--long_text chunk`` the Trainer scores rows
        by the mean of their windows' logits.
    """
    trainer, tokenized, data = ctx.trained.trainer, ctx.trained.datasets, ctx.data
    metrics: dict[str, float] = {}
    if "validation" in tokenized:
        found = trainer.evaluate(tokenized["validation"], metric_key_prefix="eval")
        found["eval_samples"] = len(data.splits["validation"])  # rows, however many windows they made
        found.update(_lengths(ctx, "eval"))
        trainer.log_metrics("eval", found)
        trainer.save_metrics("eval", found)
        metrics.update(found)
    if "test" not in tokenized:
        return Evaluation(metrics)
    output = trainer.predict(tokenized["test"], metric_key_prefix="test")
    found = dict(output.metrics)
    found["test_samples"] = len(data.splits["test"])
    found.update(_lengths(ctx, "test"))
    trainer.log_metrics("test", found)
    trainer.save_metrics("test", found)
    metrics.update(found)
    if not ctx.is_main_process:
        return Evaluation(metrics)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    out = Path(ctx.output_dir)
    threshold = run_setting(ctx, "multi_label_threshold", 0.5)
    preds = write_predictions(out / _PREDICTIONS, data.splits["test"], np.asarray(logits), data.labels,
                              data.multi_label, threshold)
    return Evaluation(metrics, _figure(data, "test", data.splits["test"]["label"], preds, out))


def evaluate_probabilities(ctx: Any) -> Evaluation:
    """Score one split from a scorer's label probabilities (zero-shot, few-shot) and write its predictions.

    Args:
        ctx: The run's context: ``scores`` (``split``, ``probabilities``: ``rows x labels`` in label-id order, a
            softmax per row for single-label data; ``threshold``), ``data`` and ``output_dir``.

    Returns:
        The metrics with the split as prefix (``test_accuracy``, ..., ``test_samples``) and the split's confusion
        matrix (single-label data).

    Raises:
        ValueError: Unknown split, or scores of the wrong shape or not probabilities.
    """
    scores, data = ctx.scores, ctx.data
    split = scores.split
    if split not in data.splits:
        raise ValueError(f"split={split!r} is not in the data; it has: {', '.join(data.splits)}.")
    rows = data.splits[split]
    logits = logits_from_probabilities(scores.probabilities, len(rows), data.num_labels, data.multi_label)
    gold = gold_matrix(rows, data.num_labels, data.multi_label)
    preds = predictions_from_logits(logits, data.multi_label, scores.threshold)
    values = classification_metrics(gold, preds, data.num_labels, data.multi_label)
    metrics: dict[str, float] = {f"{split}_{name}": float(value) for name, value in values.items()}
    metrics[f"{split}_samples"] = len(rows)
    out = Path(ctx.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(out / _PREDICTIONS, rows, logits, data.labels, data.multi_label, scores.threshold)
    return Evaluation(metrics, _figure(data, split, gold, preds, out))


def evaluate_fitted(ctx: Any) -> Evaluation:
    """Score the validation and test splits with a classifier fitted without the Trainer (``ctx.fitted``).

    Writes ``eval_results.json`` and ``test_results.json`` (as the Trainer's ``save_metrics`` does) and the test
    split's ``predictions.jsonl``; the test split's confusion matrix comes back as a figure.

    Texts longer than the encoder's length (``--max_seq_length``, at most the encoder's own) are counted per split
    (``<split>_truncated_rows``, also put into ``ctx.results``) and logged: the encoder cuts them.

    Returns:
        ``eval_*`` and ``test_*`` metrics (with ``*_samples``, ``*_runtime``, ``*_truncated_rows``).
    """
    data, classifier, out = ctx.data, ctx.fitted.classifier, Path(ctx.output_dir)
    ctx.results.update(_fitted_lengths(classifier, data))
    metrics: dict[str, float] = {}
    figures: list[ConfusionFigure] = []
    for split, prefix in (("validation", "eval"), ("test", "test")):
        if split not in data.splits:
            continue
        rows = data.splits[split]
        start = time.perf_counter()
        probabilities = classifier.predict_proba(rows["text"])
        seconds = time.perf_counter() - start
        logits = np.log(np.clip(probabilities, 1e-12, None))
        gold = gold_matrix(rows, data.num_labels, data.multi_label)
        preds = predictions_from_logits(logits, data.multi_label)
        found = {f"{prefix}_{name}": float(value)
                 for name, value in classification_metrics(gold, preds, data.num_labels, data.multi_label).items()}
        found.update({f"{prefix}_samples": len(rows), f"{prefix}_runtime": seconds,
                      f"{prefix}_samples_per_second": len(rows) / max(seconds, 1e-9), **_lengths(ctx, prefix)})
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{prefix}_results.json").write_text(json.dumps(found, indent=4, sort_keys=True) + "\n",
                                                    encoding="utf-8")
        metrics.update(found)
        if split == "test":
            write_predictions(out / _PREDICTIONS, rows, logits, data.labels, data.multi_label, 0.5)
            figures = _figure(data, split, gold, preds, out)
    return Evaluation(metrics, figures)


def _fitted_lengths(classifier: Any, data: Any) -> dict[str, int]:
    """``<split>_truncated_rows`` of a classifier on sentence embeddings: texts its encoder cuts (logged)."""
    from tlnlp.tasks.classification.tokenize import PREFIXES, SplitLengths, count_long_texts  # deferred: datasets

    encoder = getattr(classifier, "encoder", None)
    limits = [n for n in (getattr(classifier, "max_length", None), getattr(encoder, "max_seq_length", None)) if n]
    tokenizer = getattr(classifier, "tokenizer", None)
    if not limits or tokenizer is None:
        return {}
    found: dict[str, int] = {}
    for split, rows in data.splits.items():
        if split in PREFIXES:
            lengths = SplitLengths(split, len(rows), count_long_texts(tokenizer, list(rows["text"]), min(limits)),
                                   min(limits))
            lengths.report()
            found.update(lengths.metrics())
    return found
