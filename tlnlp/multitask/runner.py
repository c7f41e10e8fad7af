"""``run_multitask``: one shared encoder, one head per task, trained together with the Trainer; resumable.

See :mod:`tlnlp.multitask.outputs` for the run folder's layout. With ``--baseline single_task`` every task is also
trained alone into ``baseline_single_task/<task>/`` (itself a one-task run folder) and compared with the multi-task
result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import set_seed

from tlnlp._version import __version__
from tlnlp.config import TrainingArgs, resolved_config
from tlnlp.config.run_folder import close_output_dir
from tlnlp.multitask.args import MultiTaskArgs
from tlnlp.multitask.card import task_section
from tlnlp.multitask.data import MultiTaskDataset, load_tasks
from tlnlp.multitask.methods import check_multitask_method, prepare_multitask_method
from tlnlp.multitask.model import build_multitask_model
from tlnlp.multitask.outputs import TrainedTasks, finish_task, write_run_outputs
from tlnlp.multitask.results import RESULTS_FILE, MultiTaskResult, TaskRecord, compare_with_single_task
from tlnlp.multitask.resume import resolve_resume, write_plan
from tlnlp.multitask.sampler import task_steps
from tlnlp.multitask.spec import TaskSpec, TaskSpecError, build_task_specs
from tlnlp.multitask.trainer import (
    MultiTaskTrainer,
    SamplingSettings,
    build_multitask_trainer,
    multitask_trainer_kwargs,
)
from tlnlp.tasks import TASKS

__all__ = ["BASELINE_DIR", "run_multitask"]

logger = logging.getLogger(__name__)

#: Folder (inside the run's) of the single-task baseline runs, one subfolder per task.
BASELINE_DIR = "baseline_single_task"


@dataclass
class _Job:
    """One training run: the multi-task run, or one task's single-task baseline."""

    specs: list[TaskSpec]
    datas: list[Any]
    model_args: Any
    method_args: Any
    mt_args: MultiTaskArgs
    train_args: TrainingArgs
    resume_from: str | None = None
    callbacks: list[Any] = field(default_factory=list)
    search: Callable[[Mapping[str, Any]], Any] | None = None

    @property
    def config_objects(self) -> tuple[Any, ...]:
        return self.model_args, self.method_args, self.mt_args, self.train_args


def _plan(model_args: Any, method_args: Any, mt_args: MultiTaskArgs, train_args: Any,
          specs: Sequence[TaskSpec]) -> dict[str, Any]:
    """What decides the run's result: a resumed run must match it."""
    budget = {k: getattr(train_args, k) for k in ("learning_rate", "num_train_epochs", "max_steps", "seed",
                                                  "per_device_train_batch_size", "gradient_accumulation_steps")}
    plan = {"start_model": str(model_args.model_name_or_path), "method": resolved_config(method_args),
            "sampling": mt_args.sampling, "temperature": mt_args.temperature, "max_seq_length": mt_args.max_seq_length,
            "training": budget, "tasks": [spec.signature() for spec in specs]}
    return json.loads(json.dumps(plan, default=str))


def _tokenize(job: _Job, task: Any, tokenizer: Any) -> list[Any]:
    with job.train_args.main_process_first(desc="tokenize"):
        return [task.tokenize(data, tokenizer, spec.data_args) for spec, data in zip(job.specs, job.datas,
                                                                                      strict=True)]


def _records(job: _Job, trainer: Any) -> list[TaskRecord]:
    sampler = trainer.train_sampler()
    blocks = task_steps(sampler, trainer.state.global_step * job.train_args.gradient_accumulation_steps)
    return [TaskRecord(index=spec.index, name=spec.name, dataset=data.name, data_version=data.version,
                       fingerprint=data.fingerprint, labels=list(data.labels), train_rows=len(data.splits["train"]),
                       probability=sampler.probabilities[spec.index], blocks=blocks[spec.index],
                       folder=f"tasks/{spec.name}")
            for spec, data in zip(job.specs, job.datas, strict=True)]


def _model(job: _Job) -> tuple[Any, Any]:
    """The multi-task model as the run starts it (seeded: a search's trials and the final run start alike)."""
    set_seed(job.train_args.seed)
    return build_multitask_model(job.model_args, job.datas, [s.name for s in job.specs], job.train_args.seed)


def _trainer_parts(job: _Job, task: Any) -> dict[str, Any]:
    """The Trainer's keyword arguments besides the model, splits and arguments: sampling, metrics, callbacks."""
    return {"sampling": SamplingSettings(job.mt_args.sampling, job.mt_args.temperature, job.train_args.seed),
            "task_metrics": {s.name: task.compute_metrics(d, s.data_args) for s, d in zip(job.specs, job.datas,
                                                                                          strict=True)},
            "callbacks": job.callbacks}


def _search(job: _Job, task: Any, tokenizer: Any, splits: dict[str, Any]) -> Any:
    """The search's outcome: trials of the multi-task model, sampler and Trainer, scored on every task's validation.

    The best values are set on ``job``'s arguments. The Trainer's evaluation gives each task's metrics and their
    means over the tasks (``eval_accuracy``...), which the search optimises (or the metric --metric_for_best_model
    names, e.g. one task's ``<task>_accuracy``).
    """
    missing = [s.name for s in job.specs if s.name not in splits["validation"]]
    if missing:
        raise TaskSpecError(f"--hp_search scores each trial on every task's validation split; task(s) {missing} have "
                            "none. Fix: give those tasks a validation_file (or a dataset with a validation split), "
                            "or drop --hp_search.")
    parts = _trainer_parts(job, task)

    def build_trainer(prepared: Any, datasets: Mapping[str, Any], args: Any, trainer_class: Any) -> Any:
        return trainer_class(**multitask_trainer_kwargs(prepared, tokenizer, datasets["train"],
                                                        datasets["validation"], args, **parts))

    return job.search({"task": task, "data": job.datas, "model_args": job.model_args,
                       "method_args": job.method_args, "train_args": job.train_args, "tokenizer": tokenizer,
                       "datasets": splits, "load_model": lambda: _model(job)[0],
                       "prepare_method": prepare_multitask_method, "trainer_class": MultiTaskTrainer,
                       "build_trainer": build_trainer})


def _train(job: _Job) -> tuple[TrainedTasks, list[TaskRecord]]:
    """Build, train and write every task's folder; returns the trained run and the task records (with metrics).

    With a search, the trials run once the data are tokenized, and the final model is built afresh (as each
    trial's) and trained with the best values.
    """
    task = TASKS.get("classification")
    model, tokenizer = _model(job)
    tokenized = _tokenize(job, task, tokenizer)
    splits = {"train": MultiTaskDataset([t["train"] for t in tokenized]),
              "validation": {s.name: MultiTaskDataset([t["validation"]], [s.index])
                             for s, t in zip(job.specs, tokenized, strict=True) if "validation" in t}}
    searched = _search(job, task, tokenizer, splits) if job.search is not None else None
    if searched is not None:
        model, tokenizer = _model(job)
    prepared = prepare_multitask_method(model, job.method_args)
    trainer = build_multitask_trainer(prepared, tokenizer, splits["train"], splits["validation"], job.train_args,
                                      **_trainer_parts(job, task))
    train_result = trainer.train(resume_from_checkpoint=job.resume_from)
    run = TrainedTasks(task=task, specs=job.specs, datas=job.datas, tokenized=tokenized, trainer=trainer,
                       train_result=train_result, prepared=prepared,
                       base_model=str(job.model_args.model_name_or_path), config_objects=job.config_objects,
                       sections=dict(searched.sections) if searched else {},
                       results=dict(searched.results) if searched else {})
    records = _records(job, trainer)
    encoder = model.plain_encoder()
    for record in records:
        section = task_section(records, record.name, job.mt_args.sampling, job.mt_args.temperature)
        found = finish_task(run, record.index, encoder, section)
        record.metrics = {k: float(v) for k, v in found.items() if k.startswith(("eval_", "test_"))
                          and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return run, records


def _train_metrics(run: TrainedTasks) -> dict[str, float]:
    model = run.prepared.model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    found = {k: float(v) for k, v in run.train_result.metrics.items() if isinstance(v, (int, float))}
    return {**found, "train_trainable_parameters": trainable,
            "train_total_parameters": sum(p.numel() for p in model.parameters())}


def _run_job(job: _Job, start: float) -> tuple[TrainedTasks, MultiTaskResult]:
    run, records = _train(job)
    mt = job.mt_args
    result = MultiTaskResult(output_dir=str(run.out), start_model=str(job.model_args.model_name_or_path),
                             method=str(job.method_args.method), sampling=mt.sampling, temperature=mt.temperature,
                             target_task=mt.target_task or records[0].name, tasks=records,
                             train_metrics=_train_metrics(run), steps=int(run.trainer.state.global_step),
                             version=__version__, search_results=run.results)
    result.seconds = time.perf_counter() - start
    if run.trainer.is_world_process_zero():
        write_run_outputs(run, result)
    return run, result


def _baseline_job(job: _Job, record: TaskRecord) -> _Job:
    """Task ``record`` alone, with the run's settings and as many optimisation steps as it got in the run."""
    spec = job.specs[record.index]
    steps = max(1, math.ceil(record.blocks / job.train_args.gradient_accumulation_steps))
    args = dataclasses.replace(job.train_args, output_dir=str(Path(job.train_args.output_dir) / BASELINE_DIR /
                                                                spec.name),
                               max_steps=steps, overwrite_output_dir=True, resume_from_checkpoint=None,
                               push_to_hub=False, eval_strategy="no", save_strategy="no",
                               load_best_model_at_end=False)
    mt_args = dataclasses.replace(job.mt_args, tasks=[job.mt_args.tasks[record.index]], target_task=None,
                                  baseline="none")
    return dataclasses.replace(job, specs=[dataclasses.replace(spec, index=0)], datas=[job.datas[record.index]],
                               mt_args=mt_args, train_args=args, resume_from=None, search=None)


def _finished_baseline(folder: Path, steps: int) -> MultiTaskResult | None:
    """A baseline that finished before with the same number of steps (read back), else None."""
    path = folder / RESULTS_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("steps") != steps:
        return None
    saved.pop("metrics", None)
    records = [TaskRecord(**r) for r in saved.pop("tasks")]
    return MultiTaskResult(**saved, tasks=records)


def _baselines(job: _Job, result: MultiTaskResult) -> list[dict[str, Any]]:
    entries = []
    for record in result.tasks:
        base = _baseline_job(job, record)
        folder = Path(base.train_args.output_dir)
        done = _finished_baseline(folder, base.train_args.max_steps) if job.resume_from else None
        logger.info("Single-task baseline %s: %d steps%s", record.name, base.train_args.max_steps,
                    " (finished before; skipped)" if done else "")
        alone = done if done is not None else _run_job(base, time.perf_counter())[1]
        single = dataclasses.replace(alone.tasks[0], blocks=alone.steps)
        entries.append(compare_with_single_task(record, single, f"{BASELINE_DIR}/{record.name}"))
    return entries


def run_multitask(model_args: Any, method_args: Any, mt_args: MultiTaskArgs, train_args: TrainingArgs, *,
                  callbacks: Sequence[Any] | None = None, search: Callable[[Mapping[str, Any]], Any] | None = None,
                  search_folder: str = "hp_search") -> MultiTaskResult:
    """Train one encoder with one head per task on batches mixed from every task; write every output.

    Every task is checked (keys, values, data, method) before any training, and the ``output_dir`` is guarded like a
    recipe's; ``--resume_from_checkpoint last`` continues an interrupted run (same tasks and settings) from its
    newest checkpoint. Every process of a multi-process launch must call it.

    Args:
        model_args: The starting encoder (``ModelArgs``: a model name, a folder, or a run folder).
        method_args: ``MethodArgs`` (``full``, ``frozen_backbone`` or ``lora``).
        mt_args: The tasks, sampling, baseline and shared data settings.
        train_args: ``TrainingArgs``; ``per_device_train_batch_size`` rows of one task per batch.
        callbacks: Extra Trainer callbacks.
        search: A hyperparameter search before training (``tlnlp.search.search_hook``): its trials build the
            multi-task model, sampler and Trainer as the run does and are scored on every task's validation split;
            the run then trains with the best values. Rerunning the same command continues an interrupted search.
        search_folder: The search's folder inside ``output_dir``.

    Returns:
        The :class:`MultiTaskResult`: per-task records and metrics (``result.metrics()`` flattens them), the baseline
        comparison when asked.

    Raises:
        TaskSpecError: A task, a setting or the method is not valid; the message names it and the fix.
        tlnlp.training.OutputDirError: The output folder is not safe to write into, or holds no run to resume.
    """
    start = time.perf_counter()
    specs = build_task_specs(mt_args.tasks, mt_args.data_defaults())
    check_multitask_method(method_args)
    if train_args.push_to_hub:
        raise TaskSpecError("push_to_hub: a multi-task run holds one model per task; push a task's folder "
                            "(<output_dir>/tasks/<task>) with python -m tlnlp push instead. Fix: drop --push_to_hub.")
    plan = _plan(model_args, method_args, mt_args, train_args, specs)
    resume_from = resolve_resume(train_args, plan, search_folder if search is not None else None)
    datas = load_tasks(TASKS.get("classification"), specs)
    write_plan(train_args, plan)
    job = _Job(specs=specs, datas=datas, model_args=model_args, method_args=method_args, mt_args=mt_args,
               train_args=train_args, resume_from=resume_from, callbacks=list(callbacks or []), search=search)
    run, result = _run_job(job, start)
    if mt_args.baseline == "single_task":
        result.baseline = _baselines(job, result)
        result.seconds = time.perf_counter() - start
        if run.trainer.is_world_process_zero():
            write_run_outputs(run, result)
    close_output_dir(train_args.output_dir)  # every file of the run is written (main process; no-op elsewhere)
    return result
