"""One training run of a chain (a stage, or the target-only baseline): load, train, and write it with ``finish``."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import set_seed

from tlnlp.methods import apply_method
from tlnlp.runs import RunContext, TrainedRun, finish, write_json
from tlnlp.staged.card import SECTION_TITLE
from tlnlp.staged.heads import load_stage_model
from tlnlp.staged.records import RECORD_FILE, StageRecord
from tlnlp.staged.spec import StageSpec
from tlnlp.training import build_trainer

__all__ = ["StageJob", "train_stage"]

logger = logging.getLogger(__name__)


@dataclass
class StageJob:
    """Everything one stage's run needs.

    Attributes:
        spec: The stage.
        data: The data it trains and is scored on (rehearsal rows included).
        source: The stage's own data (no rehearsal rows): its fingerprint is recorded.
        model_args: ``ModelArgs`` of the model it starts from.
        train_args: Its ``TrainingArgs`` (``output_dir`` is the stage's folder).
        index: Its record's index (the stage's position; 0 for the baseline).
        resume_from: A checkpoint to resume from, or None.
        rehearsal_rows: Rows of the previous stage mixed in.
        section: ``section(pending_record) -> markdown`` of the card's "Staged transfer" section.
        callbacks: Extra Trainer callbacks.
        settings: What decides the result, stored in the record (checked on resume).
        sections: More card sections (e.g. the hyperparameter search's).
        results: More results for ``all_results.json`` and the record (e.g. ``hp_search_*``).
    """

    spec: StageSpec
    data: Any
    source: Any
    model_args: Any
    train_args: Any
    index: int
    resume_from: str | None = None
    rehearsal_rows: int = 0
    section: Callable[[StageRecord], str] | None = None
    callbacks: list[Any] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


def _record(job: StageJob, head: str, metrics: dict[str, Any], seconds: float) -> StageRecord:
    args, data_args = job.train_args, job.spec.data_args
    return StageRecord(
        index=job.index, name=Path(args.output_dir).name, dataset=job.source.name,
        data_version=getattr(job.source, "version", None), fingerprint=job.source.fingerprint,
        labels=list(job.data.labels), method=job.spec.method, epochs=float(args.num_train_epochs),
        learning_rate=float(args.learning_rate), max_steps=int(args.max_steps),
        train_samples_per_class=data_args.train_samples_per_class, max_train_samples=data_args.max_train_samples,
        train_rows=len(job.data.splits["train"]), rehearsal_rows=job.rehearsal_rows, head=head,
        start_model=_public(str(job.model_args.model_name_or_path)),
        metrics={k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        seconds=seconds, resumed_from=job.resume_from and Path(job.resume_from).name, settings=job.settings)


def _public(name: str) -> str:
    path = Path(name)
    return f"{path.parent.name}/{path.name}" if path.name == "merged" else (path.name if path.exists() else name)


def _clear_stale_checkpoints(folder: Path) -> None:
    """A stage that starts afresh in a folder of an earlier attempt drops that attempt's checkpoints."""
    for old in sorted(folder.glob("checkpoint-*")) if folder.is_dir() else []:
        logger.info("Removing %s of an earlier attempt of this stage (it starts afresh).", old)
        shutil.rmtree(old, ignore_errors=True)


def train_stage(job: StageJob, task: Any) -> StageRecord:
    """Train one stage from its start model and write every output of its folder through :func:`tlnlp.runs.finish`.

    The folder gets what a classification run's folder gets (model, results JSONs, predictions, plots,
    ``run_config.yaml``, ``environment.json``, the card with a "Staged transfer" section), then ``stage_record.json``
    last: its presence marks the stage as finished.

    Args:
        job: The stage's run.
        task: The classification task.

    Returns:
        The stage's record.
    """
    start = time.perf_counter()
    args, spec = job.train_args, job.spec
    if job.resume_from is None and args.process_index == 0:
        _clear_stale_checkpoints(Path(args.output_dir))
    set_seed(args.seed)
    model, tokenizer, head = load_stage_model(job.model_args, list(job.data.labels), job.data.multi_label,
                                              spec.new_head)
    prepared = apply_method(model, spec.method_args)
    with args.main_process_first(desc="tokenize"):
        tokenized = task.tokenize(job.data, tokenizer, spec.data_args)
    trainer = build_trainer(prepared, tokenizer, tokenized, args, callbacks=list(job.callbacks),
                            compute_metrics=task.compute_metrics(job.data, spec.data_args))
    train_result = trainer.train(resume_from_checkpoint=job.resume_from)
    pending = _record(job, head, {}, time.perf_counter() - start)
    sections = {SECTION_TITLE: job.section(pending)} if job.section is not None else {}
    sections.update(job.sections)
    metrics = finish(RunContext(
        output_dir=args.output_dir, recipe="classification", task=task, data=job.data,
        base_model=str(job.model_args.model_name_or_path),
        config_objects=(job.model_args, spec.data_args, spec.method_args, args),
        trained=TrainedRun(trainer, train_result, tokenized, prepared), sections=sections, results=job.results))
    record = _record(job, head, metrics, time.perf_counter() - start)
    if trainer.is_world_process_zero():
        write_json(Path(args.output_dir) / RECORD_FILE, record.to_dict())
    return record
