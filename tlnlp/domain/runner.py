""":func:`run_domain_adaptation`: a labelled source, an unlabelled target, DANN with the Trainer, every output."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers import DataCollatorWithPadding, set_seed

from tlnlp.config import DataArgs, TrainingArgs
from tlnlp.data import DataError
from tlnlp.domain.adversary import Adversary, DomainClassifier, HeadInput
from tlnlp.domain.args import MIN_A_DISTANCE_ROWS, DomainArgs
from tlnlp.domain.batches import DomainMixCollator, pair_with_target, tokenize_texts
from tlnlp.domain.distance import ADistance, encode_representations, proxy_a_distance
from tlnlp.domain.report import RESULTS_FILE, SECTION_TITLE, DomainReport, domain_section
from tlnlp.domain.target import TargetData, check_source, load_target
from tlnlp.domain.trainer import DomainAdversarialTrainer
from tlnlp.errors import UserError
from tlnlp.methods import METHODS, MethodResult, apply_method
from tlnlp.models.layers import unwrap_model
from tlnlp.runs import RunContext, TrainedRun, finish
from tlnlp.tasks import TASKS
from tlnlp.tasks.classification.predictions import write_predictions
from tlnlp.training import build_trainer, prepare_output_dir

__all__ = ["TARGET_PREDICTIONS", "DomainAdaptationError", "DomainAdaptationResult", "run_domain_adaptation"]

logger = logging.getLogger(__name__)

TARGET_PREDICTIONS = "target_predictions.jsonl"


class DomainAdaptationError(UserError, ValueError):
    """Settings a domain-adaptation run cannot honour."""


@dataclass
class _Run:
    """One run's pieces, from loading to the last measurement."""

    task: Any
    source: Any
    target: TargetData
    prepared: MethodResult
    tokenized: datasets.DatasetDict
    target_rows: dict[str, datasets.Dataset | None]
    adversary: Adversary
    domain_args: DomainArgs
    trainer: Any = None

    @property
    def is_main(self) -> bool:
        return self.trainer.args.process_index == 0


def _check_method(method_args: Any) -> None:
    if not METHODS.get(method_args.method).trains_with_trainer:
        raise DomainAdaptationError(
            f"method={method_args.method!r} fits a head on frozen sentence embeddings without the Trainer, so the "
            "encoder never sees the domain loss. Fix: choose a Trainer method, e.g. --method full or --method lora.")


def _a_distance_split(tokenized: datasets.DatasetDict, domain_args: DomainArgs) -> str | None:
    """The source split the A-distance reads (test, else validation); checked to be large enough."""
    if not domain_args.a_distance_samples:
        return None
    split = "test" if "test" in tokenized else "validation" if "validation" in tokenized else None
    if split is None or len(tokenized[split]) < MIN_A_DISTANCE_ROWS:
        rows = len(tokenized[split]) if split else 0
        raise DataError(f"The source has {rows} test (or validation) rows, too few for the A-distance (at least "
                        f"{MIN_A_DISTANCE_ROWS}). Fix: give a larger test split, or set --a_distance_samples 0.")
    return split


def _tokenize(run: _Run, tokenizer: Any, data_args: DataArgs) -> None:
    run.tokenized = run.task.tokenize(run.source, tokenizer, data_args)
    length = data_args.max_seq_length
    test = run.target.test
    run.target_rows = {
        "train": tokenize_texts(run.target.texts, tokenizer, length),
        "held_out": tokenize_texts(run.target.held_out, tokenizer, length) if run.target.held_out else None,
        "test": tokenize_texts(test["text"], tokenizer, length, test["label"]) if test is not None else None}


def _prepare(model_args: Any, data_args: DataArgs, method_args: Any, domain_args: DomainArgs,
             train_args: TrainingArgs) -> tuple[_Run, Any]:
    """Load and check the data, load the model, apply the method, tokenize: everything but the Trainer."""
    _check_method(method_args)
    set_seed(train_args.seed)
    task = TASKS.get("classification")
    source = task.load_data(data_args)
    check_source(source)
    target = load_target(domain_args, data_args, list(source.labels))
    model, tokenizer = task.load_model(model_args, source)
    prepared = apply_method(model, method_args)
    head = DomainClassifier(unwrap_model(prepared.model).config.hidden_size, domain_args.domain_hidden_size,
                            domain_args.domain_dropout)
    adversary = Adversary(head=head, representation=HeadInput(prepared.model),
                          max_lambda=float(domain_args.domain_loss_weight), gamma=domain_args.domain_lambda_gamma,
                          learning_rate=domain_args.domain_learning_rate)
    run = _Run(task=task, source=source, target=target, prepared=prepared, tokenized=datasets.DatasetDict(),
               target_rows={}, adversary=adversary, domain_args=domain_args)
    with train_args.main_process_first(desc="tokenize"):
        _tokenize(run, tokenizer, data_args)
    _a_distance_split(run.tokenized, domain_args)
    return run, tokenizer


def _build_trainer(run: _Run, tokenizer: Any, data_args: DataArgs, train_args: TrainingArgs,
                   callbacks: Sequence[Any] | None) -> None:
    paired = pair_with_target(run.tokenized["train"], run.target_rows["train"], train_args.seed,
                              train_args.length_column_name)
    logger.info("Each epoch pairs the %d source training rows with %d of the %d unlabelled target texts.",
                len(paired), min(len(paired), len(run.target.texts)), len(run.target.texts))
    pad = 8 if (train_args.fp16 or train_args.bf16) else None
    splits = datasets.DatasetDict({**run.tokenized, "train": paired})
    run.trainer = build_trainer(
        run.prepared, tokenizer, splits, train_args, callbacks=list(callbacks or []),
        compute_metrics=run.task.compute_metrics(run.source, data_args),
        data_collator=DomainMixCollator(tokenizer, pad, train_args.length_column_name),
        trainer_class=functools.partial(DomainAdversarialTrainer, adversary=run.adversary))


def _a_distance(run: _Run) -> ADistance | None:
    """The proxy A-distance of the model as it is now (main process only; None elsewhere or when skipped)."""
    split = _a_distance_split(run.tokenized, run.domain_args)
    if split is None or not run.is_main or run.target_rows["held_out"] is None:
        return None
    n, args = run.domain_args.a_distance_samples, run.trainer.args
    source, target = run.tokenized[split], run.target_rows["held_out"]
    collator = DataCollatorWithPadding(run.trainer.processing_class)
    features = [encode_representations(run.trainer.model, run.adversary.representation,
                                       rows.select(range(min(n, len(rows)))), collator, args.per_device_eval_batch_size)
                for rows in (source, target)]
    found = proxy_a_distance(features[0], features[1], seed=args.seed)
    logger.info("Proxy A-distance: %.3f (held-out error %.3f, %d rows per domain)", found.value, found.error,
                found.rows_per_domain)
    return found


def _score(run: _Run, out: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Source and target test metrics of the trained model (every process); the target's predictions file."""
    trainer, source, target = run.trainer, {}, {}
    if "test" in run.tokenized:
        found = trainer.predict(run.tokenized["test"], metric_key_prefix="source_test").metrics
        source = {**found, "source_test_samples": len(run.tokenized["test"])}
    rows = run.target_rows["test"]
    if rows is None:
        return source, target
    output = trainer.predict(rows, metric_key_prefix="target_test")
    target = {**output.metrics, "target_test_samples": len(rows)}
    if run.is_main:
        out.mkdir(parents=True, exist_ok=True)
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        write_predictions(out / TARGET_PREDICTIONS, run.target.test, np.asarray(logits), list(run.source.labels),
                          False)
    return source, target


def _settings(run: _Run) -> dict[str, Any]:
    state, adversary = run.trainer.state, run.adversary
    steps = int(state.max_steps or 0)
    return {"max_lambda": adversary.max_lambda, "gamma": adversary.gamma,
            "hidden_size": run.domain_args.domain_hidden_size, "dropout": run.domain_args.domain_dropout,
            "learning_rate": adversary.rate(run.trainer.args.learning_rate), "steps": steps,
            "final_lambda": adversary.coefficient((steps - 1) / steps) if steps else 0.0}


@dataclass
class DomainAdaptationResult:
    """What :func:`run_domain_adaptation` returns.

    Attributes:
        metrics: Every metric of the run (what :func:`tlnlp.runs.finish` returned, with the run's own numbers).
        report: The measurements (source and target test metrics, A-distances, the λ schedule, seconds).
        output_dir: The run's folder.
    """

    metrics: dict[str, float]
    report: DomainReport
    output_dir: Path


def run_domain_adaptation(model_args: Any, data_args: DataArgs, method_args: Any, domain_args: DomainArgs,
                          train_args: TrainingArgs, *,
                          callbacks: Sequence[Any] | None = None) -> DomainAdaptationResult:
    """Train a classifier on a labelled source adapted to an unlabelled target with DANN; write every output.

    Everything is checked (method, source, target, columns) before any training; the output folder is guarded
    like every recipe's (:func:`tlnlp.training.prepare_output_dir`), and ``--resume_from_checkpoint`` resumes an
    interrupted run, domain classifier included. The run folder is a classification run's (model, results,
    predictions, card, ``run_config.yaml``) plus ``domain_adaptation_results.json``, ``target_predictions.jsonl``
    (labelled targets) and the card's "Domain adaptation" section.

    Args:
        model_args: The model to start from.
        data_args: The labelled source.
        method_args: The Trainer method (``full``, ``lora``...).
        domain_args: The unlabelled target, the adversary and the A-distance rows.
        train_args: The ``TrainingArgs``.
        callbacks: Extra Trainer callbacks.

    Returns:
        The :class:`DomainAdaptationResult`: its ``metrics`` hold ``train_*``, ``eval_*`` and ``test_*`` (source),
        ``target_test_*`` (labelled targets), ``a_distance_before``/``a_distance_after`` (main process) and
        ``dann_final_lambda``.

    Raises:
        DomainAdaptationError: A method that does not train with the Trainer.
        tlnlp.data.DataError: A source or target the run cannot use; the message names the flag and the fix.
        tlnlp.training.OutputDirError: The output folder is not safe to write into.
    """
    start = time.perf_counter()
    resume = prepare_output_dir(train_args)
    run, tokenizer = _prepare(model_args, data_args, method_args, domain_args, train_args)
    _build_trainer(run, tokenizer, data_args, train_args, callbacks)
    before = _a_distance(run)
    train_result = run.trainer.train(resume_from_checkpoint=resume)
    out = Path(train_args.output_dir)
    source_test, target_test = _score(run, out)
    after = _a_distance(run)
    run.adversary.representation.remove()
    report = DomainReport(source=run.source.name, source_rows=len(run.tokenized["train"]), target=run.target,
                          settings=_settings(run), source_test=source_test, target_test=target_test, before=before,
                          after=after, seconds=time.perf_counter() - start)
    sections = {SECTION_TITLE: domain_section(report)} if run.is_main else {}
    metrics = finish(RunContext(
        output_dir=out, recipe="domain_adaptation", task=run.task, data=run.source,
        base_model=str(model_args.model_name_or_path),
        config_objects=(model_args, data_args, method_args, domain_args, train_args),
        trained=TrainedRun(run.trainer, train_result, run.tokenized, run.prepared), results=report.numbers(),
        files={RESULTS_FILE: report.to_dict()} if run.is_main else {}, sections=sections))
    return DomainAdaptationResult(metrics=metrics, report=report, output_dir=out)
