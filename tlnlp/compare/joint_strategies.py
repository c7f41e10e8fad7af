"""Ladder strategies that train on the target and other data at once: ``multitask:<sources>``, ``dann:<source>``.

``multitask:amazon_sentiment+tweet_sentiment`` trains one encoder with a head for the target (the cell's k-shot
rows) and one per source (``--transfer_source_samples`` seeded rows each), batches drawn by temperature sampling
(T = 2), for ``--transfer_source_epochs`` over the mixture at the rate of ``--learning_rates multitask=...``
(:func:`tlnlp.multitask.run_multitask`). The cell's record is the target head's accuracy on the ladder's test split,
plus each source's test accuracy after the joint training. The cell's rows go to the run as csv files, so the
target rows are exactly the other strategies' rows.

``dann:<source>`` trains on the source's labelled rows (``--transfer_source_samples``, ``--transfer_source_epochs``
at ``--transfer_source_learning_rate``: the settings of ``source_only:<source>``, its baseline) with
domain-adversarial training against the target's training texts, labels unused (:mod:`tlnlp.domain`, its default
adversary), and scores the ladder's test split: a 0-label strategy, like zero-shot. The model of a seed is trained
once and kept under the cell cache (``dann/<key>``), so scoring it on every budget's labelled rows (the in-budget
scores of ``--selection``) reads it instead of training it again.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tlnlp.compare.cells import Cell, cached_model
from tlnlp.compare.code_keys import module_code
from tlnlp.compare.strategies import CellContext, Strategy, cell_training_args, predict_test, test_metrics
from tlnlp.compare.transfer_strategies import source_dataset
from tlnlp.config import DataArgs
from tlnlp.domain import MIN_A_DISTANCE_ROWS, DomainArgs, run_domain_adaptation
from tlnlp.methods import method_args_class
from tlnlp.models import load_classifier
from tlnlp.multitask import MultiTaskArgs, run_multitask

__all__ = ["dann_strategy", "joint_strategy"]

_TARGET = "target"


def _write_rows(path: Path, texts: list[str], labels: list[int], names: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((text, names[label]) for text, label in zip(texts, labels, strict=True))


def _sources(text: str) -> list[str]:
    return [part for part in text.split("+") if part]


def _task_specs(ctx: CellContext, cell: Cell, folder: Path, sources: list[str]) -> list[str]:
    train = ctx.data.splits["train"].select(ctx.budget_rows(cell.budget, cell.seed))
    names = list(ctx.data.labels)
    _write_rows(folder / "train.csv", list(train["text"]), list(train["label"]), names)
    _write_rows(folder / "test.csv", list(ctx.test["text"]), list(ctx.test["label"]), names)
    target = (f"train_file={folder / 'train.csv'},test_file={folder / 'test.csv'},validation_split_percentage=0,"
              f"name={_TARGET}")
    return [target, *(f"dataset={source_dataset(source)},max_train_samples={ctx.args.transfer_source_samples},"
                      f"max_predict_samples=500,split_seed={cell.seed},name=source{i}"
                      for i, source in enumerate(sources, start=1))]


def _multitask_cell(ctx: CellContext, cell: Cell, sources: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tlnlp-cell-") as tmp:
        folder = Path(tmp)
        tasks = _task_specs(ctx, cell, folder, sources)
        train_args = cell_training_args(ctx, cell, 1, str(folder / "run"), ctx.args.learning_rate(cell.strategy))
        train_args.num_train_epochs = ctx.args.transfer_source_epochs
        mt_args = MultiTaskArgs(tasks=tasks, sampling="temperature", temperature=2.0, target_task=_TARGET,
                                baseline="none", max_seq_length=ctx.data_args.max_seq_length)
        start = time.perf_counter()
        result = run_multitask(ctx.model_args, method_args_class()(method="full"), mt_args, train_args)
        seconds = time.perf_counter() - start
    flat = result.metrics()
    record: dict[str, Any] = {
        "metrics": {"accuracy": flat["target_test_accuracy"], "f1_macro": flat.get("target_test_f1_macro")},
        "n_train": len(ctx.budget_rows(cell.budget, cell.seed)), "n_test": len(ctx.test), "train_time_s": seconds,
        "learning_rate": train_args.learning_rate, "sources": [source_dataset(s) for s in sources]}
    for i in range(1, len(sources) + 1):
        record[f"source{i}_test_accuracy_after"] = flat.get(f"test_source{i}_accuracy")
    return record


def joint_strategy(name: str) -> Strategy | None:
    """The strategy ``multitask:<source>[+<source>...]``, or None when ``name`` is not one."""
    family, _, text = name.partition(":")
    if family != "multitask" or not _sources(text):
        return None
    sources = _sources(text)

    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        return {"family": family, "sources": [source_dataset(s) for s in sources], "sampling": "temperature",
                "temperature": 2.0, "source_samples": ctx.args.transfer_source_samples,
                "epochs": ctx.args.transfer_source_epochs, "learning_rate": ctx.args.learning_rate(name),
                "batch_size": ctx.args.batch_size, "max_seq_length": ctx.data_args.max_seq_length}

    described = " + ".join(source_dataset(s) for s in sources)
    return Strategy(name=name, kind="trained", settings=settings,
                    description=f"multi-task: one encoder, a head for the k-shot rows and for {described}",
                    run=lambda ctx, cell: _multitask_cell(ctx, cell, sources))


def _score(ctx: CellContext, cell: Cell, folder: Path) -> tuple[dict[str, float], float]:
    """The trained run's model on the ladder's test split (its own scoring of the target is not the ladder's rows)."""
    model, tokenizer = load_classifier(dataclasses.replace(ctx.model_args, model_name_or_path=str(folder)),
                                       labels=list(ctx.data.labels))
    logits, seconds = predict_test(ctx, cell, model, tokenizer)
    return test_metrics(ctx.test["label"], logits, ctx.data.num_labels), seconds


def _a_distance_rows(texts: int) -> int:
    """The A-distance's rows, or 0 (skipped) when a tenth of the target texts is too few to hold out."""
    return 500 if texts // 10 >= MIN_A_DISTANCE_ROWS else 0


def _dann_settings(ctx: CellContext, source: str) -> dict[str, Any]:
    return {"family": "dann", "source": source_dataset(source), "source_samples": ctx.args.transfer_source_samples,
            "epochs": ctx.args.transfer_source_epochs, "learning_rate": ctx.args.transfer_source_learning_rate,
            "batch_size": ctx.args.batch_size, "max_seq_length": ctx.data_args.max_seq_length}


def _train_dann(ctx: CellContext, source: str, seed: int, folder: Path, scratch: Path) -> dict[str, Any]:
    """DANN from ``source`` to the target's unlabelled training texts (seeded), saved into ``folder``."""
    texts = ctx.data.splits["train"].shuffle(seed=seed)["text"][: ctx.args.transfer_source_samples]
    (scratch / "target.txt").write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    data_args = DataArgs(dataset_name=source_dataset(source), max_train_samples=ctx.args.transfer_source_samples,
                         max_seq_length=ctx.data_args.max_seq_length, split_seed=seed, max_predict_samples=500)
    train_args = cell_training_args(ctx, Cell(f"dann:{source}", 0, seed, {}), 1, str(folder),
                                    ctx.args.transfer_source_learning_rate)
    train_args.num_train_epochs = ctx.args.transfer_source_epochs
    start = time.perf_counter()
    result = run_domain_adaptation(ctx.model_args, data_args, method_args_class()(method="full"),
                                   DomainArgs(target_text_file=str(scratch / "target.txt"),
                                              a_distance_samples=_a_distance_rows(len(texts))), train_args)
    found = result.metrics
    return {"train_time_s": time.perf_counter() - start, "source": source_dataset(source),
            "source_test_accuracy": found.get("test_accuracy"), "a_distance_before": found.get("a_distance_before"),
            "a_distance_after": found.get("a_distance_after")}


def _dann_cell(ctx: CellContext, cell: Cell, source: str) -> dict[str, Any]:
    """The DANN model of the cell's seed scored on the cell's test rows.

    The model is trained once and kept in the cell cache, like a source model, so the in-budget scores read it.
    """
    settings = {**_dann_settings(ctx, source), "model": ctx.model_args.model_name_or_path, "seed": cell.seed,
                "data": ctx.data.fingerprint, "code": module_code(__name__)}
    root = Path(ctx.args.cell_cache_dir or Path(ctx.args.output_dir) / "cells")
    folder = cached_model(root, "dann", settings,
                          lambda model, scratch: _train_dann(ctx, source, cell.seed, model, scratch))
    done = json.loads((folder / "done.json").read_text(encoding="utf-8"))
    metrics, infer = _score(ctx, cell, folder)
    return {"metrics": metrics, "n_train": 0, "n_test": len(ctx.test),
            "inference_s_per_example": infer / max(1, len(ctx.test)),
            **{key: done.get(key) for key in ("train_time_s", "source", "source_test_accuracy", "a_distance_before",
                                              "a_distance_after")}}


def dann_strategy(name: str) -> Strategy | None:
    """The strategy ``dann:<source>``, or None when ``name`` is not one."""
    family, _, source = name.partition(":")
    if family != "dann" or not source:
        return None
    if "+" in source:
        raise ValueError(f"strategies: {name!r}: DANN adapts from one source; name a single source (e.g. "
                         f"dann:{source.split('+')[0]}), or pool sources with staged:{source} or source_only:{source}.")

    return Strategy(name=name, kind="zero_shot", uses_labels=False,
                    settings=lambda ctx, budget: _dann_settings(ctx, source),
                    description=f"DANN: trained on {source_dataset(source)}, adapted to the unlabelled target texts",
                    run=lambda ctx, cell: _dann_cell(ctx, cell, source))
