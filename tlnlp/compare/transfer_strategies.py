"""Ladder strategies that train on another labelled dataset first: ``staged:``, ``staged_rehearsal:``, ``source_only:``.

``staged:<source>`` fine-tunes the backbone on the source dataset (``--transfer_source_samples`` seeded rows,
``--transfer_source_epochs`` of full fine-tuning at ``--transfer_source_learning_rate``), then fine-tunes that model
on each cell's k-shot target rows exactly as the ``full`` strategy does (the ladder's epochs, batch and warm-up;
the rate of ``--learning_rates staged=...``). The head carries over when the source has the target's labels and
is replaced otherwise (:func:`tlnlp.staged.heads.load_stage_model`); when the labels match, the cell also scores
the source's test rows after the target training (``source_test_accuracy_after`` beside the source model's own
``source_test_accuracy``: what the source task kept). ``staged_rehearsal:<source>`` mixes
``--transfer_rehearsal_samples`` seeded source training rows into the k-shot rows. ``source_only:<source>`` scores the
source-trained model on the target with no target label at all (same labels needed). The source model of a seed
is trained once and kept under the cell cache (``sources/<key>``), so every budget reuses it. With
``--transfer_source_early_stopping_patience N`` the source stage's length is chosen on the source's own validation
rows (early stopping, best epoch kept; ``source_best_epoch`` in the record): a choice from source labels alone.

A source name without ``:`` or ``/`` is a bundled corpus (``staged:amazon_sentiment`` is
``bundled:amazon_sentiment``); anything else is read as ``--dataset_name`` reads it. Sources joined by ``+``
(``staged:amazon_sentiment+nyt_sentiment``) are pooled into one source stage: every part must have the same label
names, and the ``--transfer_source_samples`` rows are drawn evenly from the parts (so a pooled source trains as long
as a single one; ``multitask:a+b`` instead gives each source its own head and its own rows).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
from transformers import EarlyStoppingCallback, PrinterCallback, set_seed

from tlnlp.compare.cells import Cell, cached_model
from tlnlp.compare.code_keys import module_code
from tlnlp.compare.selection import selection_settings
from tlnlp.compare.strategies import (
    CellContext,
    CellStart,
    Strategy,
    cell_training_args,
    fit_and_score,
    predict_test,
    test_metrics,
)
from tlnlp.config import DataArgs
from tlnlp.methods import apply_method, method_args_class
from tlnlp.models import load_classifier
from tlnlp.staged.heads import load_stage_model
from tlnlp.tasks import load_task_data
from tlnlp.tasks.classification.metrics import make_compute_metrics
from tlnlp.tasks.classification.tokenize import tokenize_classification
from tlnlp.training import build_trainer

__all__ = ["FAMILIES", "source_dataset", "source_parts", "train_source_model", "transfer_strategy"]

#: Strategy families with a source: ``<family>:<source>``.
FAMILIES = ("staged", "staged_rehearsal", "source_only")
#: Source test rows scored for the retention check (seeded, the same rows before and after).
_RETENTION_ROWS = 500
#: Source validation rows scored after each epoch when the source stage stops early (seeded, the same every epoch).
_VALIDATION_ROWS = 500
_DONE = "source_done.json"
#: Training settings of a source stage with early stopping: score the validation rows each epoch, keep the best.
_EARLY_STOPPING = {"eval_strategy": "epoch", "save_strategy": "epoch", "load_best_model_at_end": True,
                   "metric_for_best_model": "accuracy", "greater_is_better": True, "save_total_limit": 1}


def source_dataset(text: str) -> str:
    """``amazon_sentiment`` -> ``bundled:amazon_sentiment``; a name with ``:`` or ``/`` (Hub, path) as it is.

    A pooled source (``a+b``) maps each part: ``bundled:a+bundled:b``.
    """
    if "+" in text:
        return "+".join(source_dataset(part) for part in source_parts(text))
    return text if (":" in text or "/" in text) else f"bundled:{text}"


def source_parts(text: str) -> list[str]:
    """The sources a ``+``-joined name pools (one for a plain name); empty parts are refused."""
    parts = text.split("+")
    if not all(part.strip() for part in parts):
        raise ValueError(f"source {text!r}: an empty name between '+' signs; pool sources as "
                         "amazon_sentiment+nyt_sentiment.")
    return [part.strip() for part in parts]


def _source_settings(ctx: CellContext, source: str) -> dict[str, Any]:
    args = ctx.args
    return {"source": source_dataset(source), "source_samples": args.transfer_source_samples,
            "source_epochs": args.transfer_source_epochs, "source_learning_rate": args.transfer_source_learning_rate,
            "source_early_stopping_patience": args.transfer_source_early_stopping_patience,
            "max_seq_length": ctx.data_args.max_seq_length}


def _load_source(ctx: CellContext, source: str, seed: int) -> Any:
    """The source's training rows (seeded, capped) and up to 500 of its test rows, read once per run and seed."""
    key = ("transfer_source", source, seed)
    if key not in ctx.loaded:
        ctx.loaded[key] = _read_source(ctx, source, seed)
    return ctx.loaded[key]


def _read_source(ctx: CellContext, source: str, seed: int) -> Any:
    """One source's rows, or a pooled source's: an even share of the rows (and of the held-out rows) per part."""
    parts = source_parts(source)
    share = -(-ctx.args.transfer_source_samples // len(parts))
    found = [_read_one(ctx, part, seed, share, len(parts)) for part in parts]
    if len(found) == 1:
        return found[0]
    names = list(found[0].labels)
    for part, data in zip(parts, found, strict=True):
        if sorted(data.labels) != sorted(names):
            raise ValueError(f"{source}: the pooled sources must share their label names; {parts[0]} has "
                             f"{names} and {part} has {list(data.labels)}. Pool sources of one task, or use "
                             f"multitask:{source}.")
    pooled = {split: datasets.concatenate_datasets([_with_labels(data, names).splits[split] for data in found])
              for split in found[0].splits if all(split in data.splits for data in found)}
    pooled["train"] = pooled["train"].shuffle(seed=seed).select(
        range(min(len(pooled["train"]), ctx.args.transfer_source_samples)))
    return dataclasses.replace(found[0], labels=names, splits=datasets.DatasetDict(pooled),
                               name=source_dataset(source), hub_dataset_id=None)


def _read_one(ctx: CellContext, source: str, seed: int, rows: int, pooled: int) -> Any:
    """``rows`` seeded training rows of ``source``; its held-out rows are cut to a ``1/pooled`` share."""
    data = load_task_data(DataArgs(dataset_name=source_dataset(source), max_seq_length=ctx.data_args.max_seq_length,
                                   split_seed=seed), task="classification")
    if data.multi_label or "text_pair" in data.splits["train"].column_names:
        raise ValueError(f"staged:{source}: the source must be single-label classification of single texts; "
                         f"{data.name} is not. Choose another source dataset.")
    train = data.splits["train"].shuffle(seed=seed)
    splits = {"train": train.select(range(min(len(train), rows)))}
    if ctx.args.transfer_source_early_stopping_patience:
        splits["train"], splits["validation"] = _source_validation(data, splits["train"], seed,
                                                                   -(-_VALIDATION_ROWS // pooled))
    if "test" in data.splits:
        test = data.splits["test"].shuffle(seed=0)
        splits["test"] = test.select(range(min(len(test), -(-_RETENTION_ROWS // pooled))))
    return dataclasses.replace(data, splits=datasets.DatasetDict(splits))


def _source_validation(data: Any, train: Any, seed: int, rows: int) -> tuple[Any, Any]:
    """The source's rows for early stopping: up to ``rows`` of its validation split, else 10% of ``train`` held out."""
    if "validation" in data.splits:
        validation = data.splits["validation"].shuffle(seed=0)
        return train, validation.select(range(min(len(validation), rows)))
    parts = train.train_test_split(test_size=0.1, seed=seed)
    return parts["train"], parts["test"]


def _with_labels(data: Any, names: list[str]) -> Any:
    """``data``'s text and label columns, its label ids renumbered to ``names`` (its own names in another order)."""
    index = {name: i for i, name in enumerate(names)}
    mapping = [index[name] for name in data.labels]
    splits = {name: split.select_columns(["text", "label"]).map(lambda row: {"label": mapping[row["label"]]})
              .cast_column("label", datasets.ClassLabel(names=list(names))) for name, split in data.splits.items()}
    return dataclasses.replace(data, labels=list(names), splits=datasets.DatasetDict(splits))


def _as_target_labels(ctx: CellContext, data: Any, source: str) -> Any:
    """The source rows with the target's label ids (same label names needed: rehearsal, retention)."""
    if sorted(data.labels) != sorted(ctx.data.labels):
        raise ValueError(f"{source}: the source's labels {list(data.labels)} are not the target's "
                         f"{list(ctx.data.labels)}; rehearsal and source-only scoring need the same labels. Use "
                         f"staged:{source}.")
    return _with_labels(data, list(ctx.data.labels))


def train_source_model(ctx: CellContext, source: str, seed: int) -> Path:
    """The backbone fine-tuned on ``source`` for ``seed`` (trained once, then read from the cell cache).

    The folder holds a classifier (safetensors) and ``source_done.json``: the source's labels, rows and test
    accuracy. It is written into a temporary folder and renamed, so an interrupted training leaves nothing.
    """
    settings = {**_source_settings(ctx, source), "model": ctx.model_args.model_name_or_path, "seed": seed,
                "code": module_code(__name__)}
    root = Path(ctx.args.cell_cache_dir or Path(ctx.args.output_dir) / "cells")
    return cached_model(root, "sources", settings, lambda folder, scratch: _train_source(
        ctx, source, settings, folder, scratch), done=_DONE)


def _train_source(ctx: CellContext, source: str, settings: dict[str, Any], folder: Path,
                  scratch: Path) -> dict[str, Any]:
    seed = settings["seed"]
    set_seed(seed)
    data = _load_source(ctx, source, seed)
    model, tokenizer = load_classifier(ctx.model_args, labels=data.labels)
    prepared = apply_method(model, method_args_class()(method="full"))
    tokenized = tokenize_classification(data, tokenizer, ctx.data_args.max_seq_length)
    patience = ctx.args.transfer_source_early_stopping_patience
    train_args = cell_training_args(ctx, Cell("source", 0, seed, settings), len(data.splits["train"]),
                                    str(scratch / "run"), ctx.args.transfer_source_learning_rate,
                                    overrides=_EARLY_STOPPING if patience else None)
    train_args.num_train_epochs = ctx.args.transfer_source_epochs
    trainer = build_trainer(prepared, tokenizer, tokenized, train_args,
                            compute_metrics=make_compute_metrics(data.num_labels) if patience else None,
                            callbacks=[EarlyStoppingCallback(patience)] if patience else None)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    done = {**settings, "labels": list(data.labels), "rows": len(data.splits["train"])}
    if patience:
        done["source_validation"] = _validation_record(trainer)
    if "test" in tokenized:
        output = trainer.predict(tokenized["test"])
        done["source_test_accuracy"] = test_metrics(data.splits["test"]["label"], output.predictions,
                                                    data.num_labels)["accuracy"]
    trainer.save_model(str(folder))
    tokenizer.save_pretrained(str(folder))
    return done


def _validation_record(trainer: Any) -> dict[str, Any]:
    """The source's validation accuracy per epoch, the epoch kept (the best; the first of ties) and epochs trained."""
    curve = [[round(float(log["epoch"]), 3), float(log["eval_accuracy"])]
             for log in trainer.state.log_history if "eval_accuracy" in log]
    best = max(curve, key=lambda point: point[1])
    return {"accuracy_by_epoch": curve, "best_epoch": best[0], "best_accuracy": best[1],
            "epochs_trained": round(float(trainer.state.epoch or 0.0), 3)}


def _source_record(folder: Path) -> dict[str, Any]:
    done = json.loads((folder / _DONE).read_text(encoding="utf-8"))
    record = {"source": done["source"], "source_rows": done["rows"],
              "source_test_accuracy": done.get("source_test_accuracy")}
    if "source_validation" in done:
        record["source_best_epoch"] = done["source_validation"]["best_epoch"]
    return record


def _retention(ctx: CellContext, source: Any, tokenizer: Any) -> Callable[[Any], dict[str, Any]]:
    """``after(trainer)``: the trained cell's accuracy on the source's test rows (what the source task keeps)."""
    def after(trainer: Any) -> dict[str, Any]:
        rows = tokenize_classification(source, tokenizer, ctx.data_args.max_seq_length)["test"]
        logits = trainer.predict(rows).predictions
        return {"source_test_accuracy_after": test_metrics(source.splits["test"]["label"], logits,
                                                           ctx.data.num_labels)["accuracy"]}

    return after


def _staged_cell(ctx: CellContext, cell: Cell, source: str, rehearsal: bool) -> dict[str, Any]:
    folder = train_source_model(ctx, source, cell.seed)
    begin = dataclasses.replace(ctx.model_args, model_name_or_path=str(folder))
    loaded: dict[str, Any] = {}

    def load() -> tuple[Any, Any]:
        model, loaded["tokenizer"], _ = load_stage_model(begin, list(ctx.data.labels))
        return model, loaded["tokenizer"]

    same = sorted(json.loads((folder / _DONE).read_text(encoding="utf-8"))["labels"]) == sorted(ctx.data.labels)
    data = _as_target_labels(ctx, _load_source(ctx, source, cell.seed), source) if same or rehearsal else None
    start, extra = CellStart(load=load), {}
    if rehearsal:
        extra["rehearsal_rows"] = min(ctx.args.transfer_rehearsal_samples, len(data.splits["train"]))
        rows = dataclasses.replace(data, splits=datasets.DatasetDict(
            {"train": data.splits["train"].shuffle(seed=cell.seed).select(range(extra["rehearsal_rows"]))}))
        start.extra_train = lambda tokenizer: tokenize_classification(rows, tokenizer,
                                                                      ctx.data_args.max_seq_length)["train"]
    if data is not None and "test" in data.splits:
        start.after = lambda trainer: _retention(ctx, data, loaded["tokenizer"])(trainer)
    record = fit_and_score(ctx, cell, "full", start=start)
    return {**record, **extra, **_source_record(folder)}


def _source_only_cell(ctx: CellContext, cell: Cell, source: str) -> dict[str, Any]:
    folder = train_source_model(ctx, source, cell.seed)
    done = json.loads((folder / _DONE).read_text(encoding="utf-8"))
    if sorted(done["labels"]) != sorted(ctx.data.labels):
        raise ValueError(f"source_only:{source}: the source's labels {done['labels']} are not the target's "
                         f"{list(ctx.data.labels)}; a source-only model cannot label the target. Use staged:{source}.")
    model, tokenizer, _ = load_stage_model(dataclasses.replace(ctx.model_args, model_name_or_path=str(folder)),
                                           list(ctx.data.labels))
    logits, seconds = predict_test(ctx, cell, model, tokenizer)
    return {"metrics": test_metrics(ctx.test["label"], logits, ctx.data.num_labels), "n_train": 0,
            "n_test": len(ctx.test), "train_time_s": 0.0, "inference_s_per_example": seconds / max(1, len(ctx.test)),
            **_source_record(folder)}


def transfer_strategy(name: str) -> Strategy | None:
    """The strategy ``staged:<source>`` or ``source_only:<source>``, or None when ``name`` is neither."""
    family, _, source = name.partition(":")
    if family not in FAMILIES or not source:
        return None
    source_parts(source)  # a malformed pool is refused when the name is read

    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        found = {"family": family, **_source_settings(ctx, source)}
        if family == "staged_rehearsal":
            found["rehearsal_samples"] = ctx.args.transfer_rehearsal_samples
        if family != "source_only":
            found.update(learning_rate=ctx.args.learning_rate(name), batch_size=ctx.args.batch_size,
                         warmup_ratio=ctx.args.warmup_ratio, weight_decay=ctx.args.weight_decay,
                         min_train_steps=ctx.args.min_train_steps, num_train_epochs=ctx.args.num_train_epochs,
                         max_train_epochs=ctx.args.max_train_epochs)
            found.update(selection_settings(ctx.args, "trained"))  # --selection cv: the target stage's rate, epochs
        return found

    if family != "source_only":
        rehearsal = family == "staged_rehearsal"
        mixed = " with rehearsal rows of the source" if rehearsal else ""
        return Strategy(name=name, kind="trained", settings=settings,
                        description=f"full fine-tuning on {source_dataset(source)} first, then on the k-shot rows"
                                    f"{mixed}", run=lambda ctx, cell: _staged_cell(ctx, cell, source, rehearsal))
    return Strategy(name=name, kind="zero_shot", settings=settings, uses_labels=False,
                    description=f"trained on {source_dataset(source)} only, no target label",
                    run=lambda ctx, cell: _source_only_cell(ctx, cell, source))
