"""``evaluate_few_shot``: in-context few-shot classification over several demonstration samples and orders.

For every seed a balanced k-shot sample of the training rows is drawn, and for every order a permutation of
it; each (seed, order) is one *run*: the prompt prefix (instruction + demonstrations) is encoded once, every
evaluation row and every label word is scored after it (:func:`~tlnlp.fewshot.scoring.score_continuations`),
and so are the content-free inputs used for calibration. Each run yields raw and calibrated label
probabilities under summed and length-normalised scoring; the report gives every run and the mean, std, min
and max across runs.

Example:
    >>> report = evaluate_few_shot(model, tokenizer, SPECS.get("sentiment"), data.splits["train"],
    ...                            data.splits["test"], FewShotOptions(shots=4, seeds=[0, 1, 2], orders=2))
    >>> report.summary()["sum_calibrated"]["accuracy"]["mean"]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tlnlp.fewshot.calibration import NORMALIZATIONS, contextual_calibration, label_log_scores, softmax
from tlnlp.fewshot.options import FewShotOptions
from tlnlp.fewshot.prompts import encode_prompts
from tlnlp.fewshot.runcache import load_run, run_key, save_run
from tlnlp.fewshot.sampling import sample_demonstrations
from tlnlp.fewshot.scoring import score_continuations
from tlnlp.fewshot.spec import PromptSpec, PromptSpecError
from tlnlp.tasks import classification_metrics

__all__ = ["METRICS", "FewShotReport", "FewShotRun", "evaluate_few_shot", "variant_name"]

logger = logging.getLogger(__name__)

#: Metrics computed for every run and variant.
METRICS = ("accuracy", "f1_macro")


def variant_name(normalization: str, calibrated: bool) -> str:
    """Name of a scoring variant, e.g. ``sum_calibrated`` or ``mean_raw``."""
    return f"{normalization}_{'calibrated' if calibrated else 'raw'}"


@dataclass
class FewShotRun:
    """One prompt (one demonstration sample in one order) scored on every evaluation row.

    Attributes:
        seed: Seed of the demonstration sample.
        order: Which permutation of the sample.
        demonstrations: Training-row indices, in prompt order.
        metrics: Variant (``sum_raw``, ``sum_calibrated``, ``mean_raw``, ``mean_calibrated``) -> metric -> value.
        probabilities: Variant -> ``rows x labels`` label probabilities.
        content_free: Normalization -> mean label probabilities of the content-free inputs.
        prefix_tokens: Length of the shared prefix in tokens.
    """

    seed: int
    order: int
    demonstrations: list[int]
    metrics: dict[str, dict[str, float]]
    probabilities: dict[str, np.ndarray] = field(repr=False)
    content_free: dict[str, list[float]]
    prefix_tokens: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary of the run (no probabilities)."""
        return {"seed": self.seed, "order": self.order, "demonstrations": self.demonstrations,
                "prefix_tokens": self.prefix_tokens, "metrics": self.metrics, "content_free": self.content_free}


@dataclass
class FewShotReport:
    """Every run of a few-shot evaluation and the statistics across them."""

    spec: PromptSpec
    labels: list[str]
    shots: int
    normalization: str
    calibrate: bool
    content_free_inputs: list[str]
    runs: list[FewShotRun]

    @property
    def primary(self) -> str:
        """The variant used for predictions: the chosen normalization, calibrated when calibration is on."""
        return variant_name(self.normalization, self.calibrate)

    @property
    def variants(self) -> list[str]:
        """Variants present in every run."""
        return list(self.runs[0].metrics) if self.runs else []

    def probabilities(self, variant: str | None = None) -> np.ndarray:
        """Label probabilities of ``variant`` (default: :attr:`primary`) averaged over the runs (rows x labels)."""
        name = variant or self.primary
        return np.mean([run.probabilities[name] for run in self.runs], axis=0)

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Variant -> metric -> ``mean``, ``std`` (sample, ddof=1; 0 for one run), ``min``, ``max``, ``runs``."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for variant in self.variants:
            out[variant] = {}
            for metric in METRICS:
                values = np.array([run.metrics[variant][metric] for run in self.runs])
                out[variant][metric] = {
                    "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                    "min": float(values.min()), "max": float(values.max()), "runs": len(values)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able report: spec name and version, settings, the summary and every run."""
        return {"spec": self.spec.name, "spec_version": self.spec.version, "shots_per_class": self.shots,
                "normalization": self.normalization, "calibrate": self.calibrate, "primary": self.primary,
                "content_free_inputs": self.content_free_inputs, "labels": self.labels,
                "summary": self.summary(), "runs": [run.to_dict() for run in self.runs]}


def _rows(table: Any, fields: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(fields, values, strict=True)) for values in zip(*(table[f] for f in fields), strict=True)]


def _label_names(rows: Any, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        return list(labels)
    feature = getattr(rows, "features", {}).get("label")
    names = getattr(feature, "names", None)
    if not names:
        raise ValueError("Pass labels=[class names in id order]: the rows' label column carries no names.")
    return list(names)


def _check_single_label(train_rows: Any, eval_rows: Any) -> None:
    for name, rows in (("train_rows", train_rows), ("eval_rows", eval_rows)):
        if "label" not in rows.column_names:
            raise ValueError(f"{name} has no 'label' column (columns: {', '.join(rows.column_names)}).")
        if rows.features["label"].__class__.__name__ in ("List", "Sequence", "LargeList"):
            raise PromptSpecError("Few-shot prompting scores one label per example; multi-label data is not "
                                  "supported. Use a single-label dataset.")


def _check_inputs(spec: PromptSpec, eval_rows: Any, labels: list[str], options: FewShotOptions) -> None:
    spec.check_fits(labels, eval_rows.column_names)
    if options.normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={options.normalization!r} is not valid; choose one of: "
                         f"{', '.join(NORMALIZATIONS)}.")
    if options.calibrate and not options.content_free:
        raise ValueError("calibrate=True needs at least one content-free input (e.g. 'N/A'); give content_free or "
                         "set calibrate=False.")
    if not options.seeds or options.orders < 1 or options.shots < 0:
        raise ValueError(f"seeds={list(options.seeds)!r}, orders={options.orders!r} and shots={options.shots!r}: "
                         "give at least one seed, orders >= 1 and shots >= 0.")


def _run_metrics(probs: dict[str, np.ndarray], gold: np.ndarray, num_labels: int) -> dict[str, dict[str, float]]:
    out = {}
    for variant, matrix in probs.items():
        values = classification_metrics(gold, matrix.argmax(axis=1), num_labels)
        out[variant] = {metric: float(values[metric]) for metric in METRICS}
    return out


def _one_run(model: Any, tokenizer: Any, spec: PromptSpec, demos: list[tuple[dict[str, Any], str]],
             rows: list[dict[str, Any]], labels: list[str], options: FewShotOptions,
             bar: Any) -> tuple[dict[str, np.ndarray], dict[str, list[float]], int]:
    """Score one prompt; returns variant -> probabilities, content-free means, and the prefix length."""
    empty_rows = [{name: text for name in spec.fields} for text in options.content_free]
    encoded = encode_prompts(tokenizer, spec, demos, rows + empty_rows, labels)
    word_ll = score_continuations(model, encoded.prefix, encoded.contexts, encoded.continuations,
                                  batch_size=options.batch_size, shared_prefix=options.shared_prefix, progress=bar)
    lengths = [len(c) for c in encoded.continuations]
    probs: dict[str, np.ndarray] = {}
    cf_means: dict[str, list[float]] = {}
    for normalization in NORMALIZATIONS:
        all_probs = softmax(label_log_scores(word_ll, lengths, encoded.candidate_labels, len(labels), normalization))
        real, empty = all_probs[: len(rows)], all_probs[len(rows):]
        probs[variant_name(normalization, False)] = real
        if len(empty):
            probs[variant_name(normalization, True)] = contextual_calibration(real, empty)
            cf_means[normalization] = [float(x) for x in empty.mean(axis=0)]
    return probs, cf_means, len(encoded.prefix)


def evaluate_few_shot(
    model: Any,
    tokenizer: Any,
    spec: PromptSpec,
    train_rows: Any,
    eval_rows: Any,
    options: FewShotOptions,
    *,
    labels: Sequence[str] | None = None,
    run_dir: str | Path | None = None,
) -> FewShotReport:
    """Evaluate in-context few-shot classification of ``eval_rows`` with demonstrations from ``train_rows``.

    Args:
        model: A causal LM in eval mode, already on its device.
        tokenizer: Its tokenizer.
        spec: The prompt spec (checked against the data's fields and labels here).
        train_rows: ``datasets.Dataset`` the demonstrations come from (``text``, ``label``, maybe ``text_pair``).
        eval_rows: ``datasets.Dataset`` to classify, same columns.
        options: Shots per class, seeds, orders, calibration, content-free inputs, normalization, batch size,
            shared-prefix scoring and the progress bar (see :class:`~tlnlp.fewshot.options.FewShotOptions`).
        labels: Class names in id order (default: the names of the ``label`` column's ClassLabel).
        run_dir: Folder where each finished run is stored; a later call with the same settings reuses the
            stored runs (an interrupted evaluation resumes).

    Returns:
        The :class:`FewShotReport`.

    Raises:
        PromptSpecError: The spec does not fit the data (missing field or label), or the data is multi-label.
        ValueError: Bad arguments.
    """
    _check_single_label(train_rows, eval_rows)
    names = _label_names(eval_rows, labels)
    _check_inputs(spec, eval_rows, names, options)
    shots, seeds, content_free = options.shots, options.seeds, options.content_free
    plan = [(seeds[0], 0)] if shots == 0 else [(seed, order) for seed in seeds for order in range(options.orders)]
    rows, train = _rows(eval_rows, spec.fields), _rows(train_rows, spec.fields)
    gold = np.asarray(eval_rows["label"])
    train_labels = list(train_rows["label"])
    runs = []
    for seed, order in plan:
        picked = sample_demonstrations(train_rows, shots, seed, order)
        demos = [(train[i], names[train_labels[i]]) for i in picked]
        key = run_key(model, spec, demos, rows, names, content_free)
        stored = load_run(run_dir, seed, order, key)
        if stored is not None:
            probs, cf_means, plen = stored["probabilities"], stored["content_free"], stored["prefix_tokens"]
        else:
            with tqdm(total=len(rows) + len(content_free), desc=f"{shots}-shot seed {seed} order {order}",
                      unit="ex", disable=not options.show_progress, leave=False) as bar:
                probs, cf_means, plen = _one_run(model, tokenizer, spec, demos, rows, names, options, bar)
            save_run(run_dir, seed, order, key, {"probabilities": probs, "content_free": cf_means,
                                                 "prefix_tokens": plen})
        metrics = _run_metrics(probs, gold, len(names))
        runs.append(FewShotRun(seed=seed, order=order, demonstrations=picked, metrics=metrics, probabilities=probs,
                               content_free=cf_means, prefix_tokens=plen))
        logger.info("%d-shot seed %d order %d (%d prefix tokens): %s", shots, seed, order, plen,
                    ", ".join(f"{v} acc {m['accuracy']:.4f}" for v, m in metrics.items()))
    return FewShotReport(spec=spec, labels=names, shots=shots, normalization=options.normalization,
                         calibrate=options.calibrate, content_free_inputs=list(content_free), runs=runs)
