""":func:`run_domain_adaptation`: a labelled source, an unlabelled target, DANN with the Trainer, every output."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from tlnlp.domain.search import DomainSearch, search_refusal
from tlnlp.domain.target import TargetData, check_source, load_target
from tlnlp.domain.trainer import TARGET_EVAL_PREFIX, DomainAdversarialTrainer
from tlnlp.errors import UserError
from tlnlp.methods import METHODS, MethodResult, apply_method
from tlnlp.models.layers import unwrap_model
from tlnlp.runs import RunContext, TrainedRun, finish
from tlnlp.tasks import TASKS
from tlnlp.tasks.classification.predictions import write_predictions
from tlnlp.training import build_trainer, pad_multiple, prepare_output_dir

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
    domain_args: DomainArgs
    prepared: MethodResult | None = None
    tokenized: datasets.DatasetDict = field(default_factory=datasets.DatasetDict)
    target_rows: dict[str, datasets.Dataset | None] = field(default_factory=dict)
    adversary: Adversary | None = None
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
    length, target = data_args.max_seq_length, run.target

    def labelled(rows: datasets.Dataset | None) -> datasets.Dataset | None:
        return tokenize_texts(rows["text"], tokenizer, length, rows["label"]) if rows is not None else None

    run.target_rows = {"train": tokenize_texts(target.texts, tokenizer, length),
                       "held_out": tokenize_texts(target.held_out, tokenizer, length) if target.held_out else None,
                       "test": labelled(target.test), "validation": labelled(target.validation)}


def _load(data_args: DataArgs, domain_args: DomainArgs) -> _Run:
    """Load and check the source and the target."""
    task = TASKS.get("classification")
    source = task.load_data(data_args)
    check_source(source)
    target = load_target(domain_args, data_args, list(source.labels))
    return _Run(task=task, source=source, target=target, domain_args=domain_args)


def _adversary(prepared: MethodResult, domain_args: DomainArgs) -> Adversary:
    """A fresh domain classifier on the representation that ``prepared``'s classification head reads."""
    head = DomainClassifier(unwrap_model(prepared.model).config.hidden_size, domain_args.domain_hidden_size,
                            domain_args.domain_dropout)
    return Adversary(head=head, representation=HeadInput(prepared.model),
                     max_lambda=float(domain_args.domain_loss_weight), gamma=domain_args.domain_lambda_gamma,
                     learning_rate=domain_args.domain_learning_rate)


def _build_model(run: _Run, model_args: Any, method_args: Any, seed: int) -> Any:
    """Seed, load the model, apply the method, add the adversary (as each search trial does); the tokenizer."""
    if run.adversary is not None:
        run.adversary.representation.remove()
    set_seed(seed)
    model, tokenizer = run.task.load_model(model_args, run.source)
    run.prepared = apply_method(model, method_args)
    run.adversary = _adversary(run.prepared, run.domain_args)
    return tokenizer


def _prepare(model_args: Any, method_args: Any, run: _Run, data_args: DataArgs, train_args: TrainingArgs) -> Any:
    """Load the model, apply the method, tokenize: everything but the Trainer; the tokenizer."""
    tokenizer = _build_model(run, model_args, method_args, train_args.seed)
    with train_args.main_process_first(desc="tokenize"):
        _tokenize(run, tokenizer, data_args)
    _a_distance_split(run.tokenized, run.domain_args)
    return tokenizer


def _paired(run: _Run, train_args: TrainingArgs) -> datasets.Dataset:
    paired = pair_with_target(run.tokenized["train"], run.target_rows["train"], train_args.seed,
                              train_args.length_column_name)
    logger.info("Each epoch pairs the %d source training rows with %d of the %d unlabelled target texts.",
                len(paired), min(len(paired), len(run.target.texts)), len(run.target.texts))
    return paired


def _trainer_parts(run: _Run, tokenizer: Any, data_args: DataArgs, train_args: TrainingArgs,
                   callbacks: Sequence[Any] | None) -> dict[str, Any]:
    """``build_trainer``'s keyword arguments besides the Trainer class: metrics, the mixing collator, callbacks."""
    pad = pad_multiple(train_args)
    return {"compute_metrics": run.task.compute_metrics(run.source, data_args), "callbacks": list(callbacks or []),
            "data_collator": DomainMixCollator(tokenizer, pad, train_args.length_column_name)}


def _build_trainer(run: _Run, tokenizer: Any, parts: dict[str, Any], train_args: TrainingArgs) -> None:
    splits = datasets.DatasetDict({**run.tokenized, "train": _paired(run, train_args)})
    run.trainer = build_trainer(run.prepared, tokenizer, splits, train_args, **parts, trainer_class=functools.partial(
        DomainAdversarialTrainer, adversary=run.adversary, target_eval_dataset=run.target_rows["validation"]))


def _search(search: DomainSearch, run: _Run, tokenizer: Any, parts: dict[str, Any],
            config: tuple[Any, Any, TrainingArgs]) -> Any:
    """Trials of DANN as the run trains it, scored on the target's labelled validation split; the outcome.

    ``config``: the model, method and training arguments (the best values are set on them and on ``DomainArgs``).
    """
    model_args, method_args, train_args = config
    rows = run.target_rows["validation"]

    def trainer(prepared: MethodResult, splits: Any, args: Any, trainer_class: Any) -> Any:
        factory = functools.partial(trainer_class, adversary=_adversary(prepared, run.domain_args),
                                    target_eval_dataset=rows)
        return build_trainer(prepared, tokenizer, splits, args, **parts, trainer_class=factory)

    def setup_trial(trainer: Any, prepared: MethodResult, options: DomainArgs) -> None:
        trainer.use_adversary(_adversary(prepared, options))  # the trial's domain classifier, on its model

    return search.run({
        "task": run.task, "data": run.source, "model_args": model_args, "method_args": method_args,
        "train_args": train_args, "tokenizer": tokenizer, "compute_metrics": parts["compute_metrics"],
        "datasets": {"train": _paired(run, train_args), **{k: run.tokenized[k] for k in run.tokenized
                                                            if k == "validation"}},
        "trainer_class": DomainAdversarialTrainer, "build_trainer": trainer, "setup_trial": setup_trial,
        "load_model": lambda: run.task.load_model(model_args, run.source)[0]})


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


def _target_validation(run: _Run) -> dict[str, float]:
    """The trained model's metrics on the target's labelled validation split (``eval_target_*``), if it has one."""
    rows = run.target_rows["validation"]
    if rows is None:
        return {}
    found = run.trainer.evaluate(rows, metric_key_prefix=TARGET_EVAL_PREFIX)
    return {**found, f"{TARGET_EVAL_PREFIX}_samples": len(rows)}


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


def _guard(run_parts: tuple[Any, DataArgs, DomainArgs], train_args: TrainingArgs,
           search: DomainSearch | None) -> tuple[_Run, str | None]:
    """Load the source and target, refuse a search that would not be sound, guard the output folder.

    ``run_parts``: the method, data and domain arguments. Nothing is written before the checks pass.
    """
    method_args, data_args, domain_args = run_parts
    _check_method(method_args)
    if search is not None and (refused := search_refusal(train_args, None)):
        search.refuse(*refused)
    run = _load(data_args, domain_args)
    if search is not None and (refused := search_refusal(train_args, run.target)):
        search.refuse(*refused)
    return run, (search.prepare_output_dir if search is not None else prepare_output_dir)(train_args)


def run_domain_adaptation(model_args: Any, data_args: DataArgs, method_args: Any, domain_args: DomainArgs,
                          train_args: TrainingArgs, *, callbacks: Sequence[Any] | None = None,
                          search: DomainSearch | None = None) -> DomainAdaptationResult:
    """Train a classifier on a labelled source adapted to an unlabelled target with DANN; write every output.

    Everything is checked (method, source, target, columns) before any training; the output folder is guarded
    like every recipe's (:func:`tlnlp.training.prepare_output_dir`), and ``--resume_from_checkpoint`` resumes an
    interrupted run, domain classifier included. The run folder is a classification run's (model, results,
    predictions, card, ``run_config.yaml``) plus ``domain_adaptation_results.json``, ``target_predictions.jsonl``
    (labelled targets) and the card's "Domain adaptation" section. A target with a labelled validation split is
    scored on it too (``eval_target_*``, at every evaluation and at the end).

    Args:
        model_args: The model to start from.
        data_args: The labelled source.
        method_args: The Trainer method (``full``, ``lora``...).
        domain_args: The unlabelled target, the adversary and the A-distance rows.
        train_args: The ``TrainingArgs``.
        callbacks: Extra Trainer callbacks.
        search: A hyperparameter search before training (see :mod:`tlnlp.domain.search`): its trials train DANN as
            the run does and are scored on the target's labelled validation split (a run whose target has none is
            refused before anything is written); the run then trains with the best values.

    Returns:
        The :class:`DomainAdaptationResult`: its ``metrics`` hold ``train_*``, ``eval_*`` and ``test_*`` (source),
        ``eval_target_*`` and ``target_test_*`` (labelled targets), ``a_distance_before``/``a_distance_after``
        (main process), ``dann_final_lambda`` and, after a search, ``hp_search_*``.

    Raises:
        DomainAdaptationError: A method that does not train with the Trainer.
        tlnlp.data.DataError: A source or target the run cannot use; the message names the flag and the fix.
        tlnlp.training.OutputDirError: The output folder is not safe to write into.
    """
    start = time.perf_counter()
    run, resume = _guard((method_args, data_args, domain_args), train_args, search)
    tokenizer = _prepare(model_args, method_args, run, data_args, train_args)
    parts = _trainer_parts(run, tokenizer, data_args, train_args, callbacks)
    searched = _search(search, run, tokenizer, parts, (model_args, method_args, train_args)) if search else None
    if searched is not None:  # the final model starts as the trials did, with the best values
        _build_model(run, model_args, method_args, train_args.seed)
    _build_trainer(run, tokenizer, parts, train_args)
    before = _a_distance(run)
    train_result = run.trainer.train(resume_from_checkpoint=resume)
    out = Path(train_args.output_dir)
    source_test, target_test = _score(run, out)
    after = _a_distance(run)
    run.adversary.representation.remove()
    report = DomainReport(source=run.source.name, source_rows=len(run.tokenized["train"]), target=run.target,
                          settings=_settings(run), source_test=source_test, target_test=target_test, before=before,
                          after=after, seconds=time.perf_counter() - start, target_validation=_target_validation(run),
                          searched=searched is not None)
    sections = {SECTION_TITLE: domain_section(report)} if run.is_main else {}
    if searched is not None:
        sections.update(searched.sections)
    metrics = finish(RunContext(
        output_dir=out, recipe="domain_adaptation", task=run.task, data=run.source,
        base_model=str(model_args.model_name_or_path),
        config_objects=(model_args, data_args, method_args, domain_args, train_args),
        trained=TrainedRun(run.trainer, train_result, run.tokenized, run.prepared),
        results={**report.numbers(), **(searched.results if searched is not None else {})},
        files={RESULTS_FILE: report.to_dict()} if run.is_main else {}, sections=sections))
    return DomainAdaptationResult(metrics=metrics, report=report, output_dir=out)
