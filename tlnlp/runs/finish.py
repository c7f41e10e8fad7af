"""``finish``: the one output pipeline of every run, trained or evaluation-only.

Every recipe ends here, so every run folder holds the same kinds of files: the model (training runs), results
JSONs, predictions, plots, ``run_config.yaml``, ``environment.json``, the card, and a push when asked. What differs
between runs comes from the task (how splits are scored and predictions written), the methods (what an adapter
saves, how it is described) and the :class:`~tlnlp.outputs.RunContext`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tlnlp.config import rerun_command, resolved_config, write_run_config
from tlnlp.config.run_folder import ensure_claimed, mark_finished, release_output_dir, write_text_atomic
from tlnlp.hub import CardSpec, build_model_card, push_run_from_args
from tlnlp.models import count_parameters
from tlnlp.report import plot_evaluation, plot_training_curves
from tlnlp.runs.context import RunContext
from tlnlp.runs.files import environment_info, reproduce_command, write_json
from tlnlp.runs.resources import resource_metrics, resources_section

__all__ = ["finish"]

logger = logging.getLogger(__name__)

_CARD_HYPERPARAMETERS = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                         "gradient_accumulation_steps", "weight_decay", "warmup_steps", "lr_scheduler_type",
                         "optim", "seed", "train_sampling_strategy")


def _save_model(ctx: RunContext) -> dict[str, Any]:
    """Save the trained weights (with each method's extras) and the train metrics; every process calls it."""
    trained = ctx.trained
    trainer, methods = trained.trainer, trained.prepared.methods
    args = trained.prepared.method_args
    params = count_parameters(trainer.model)
    metrics = dict(trained.train_result.metrics)
    train_rows = len(ctx.data.splits["train"]) if "train" in getattr(ctx.data, "splits", {}) else None
    if train_rows is not None:
        metrics["train_samples"] = train_rows
    metrics.update({"train_trainable_parameters": params["trainable"], "train_total_parameters": params["total"]})
    for method in methods:
        method.before_save(trainer, args, ctx.base_model)
    trainer.save_model()
    if ctx.is_main_process:
        adapter = False
        for method in methods:
            adapter = method.after_save(trainer, args, ctx.output_dir) or adapter
        metrics.update(resource_metrics(params, ctx.output_dir, adapter))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    return {"metrics": metrics, "params": params}


def _save_fitted(ctx: RunContext) -> dict[str, Any]:
    """Save a classifier fitted without the Trainer (safetensors) and its ``train_results.json``."""
    fitted = ctx.fitted
    fitted.classifier.save(ctx.output_dir)
    params = fitted.classifier.parameter_counts(fitted.method.trains_encoder)
    metrics = {**fitted.metrics, "train_trainable_parameters": params["trainable"],
               "train_total_parameters": params["total"]}
    metrics.update(resource_metrics(params, ctx.output_dir, False))
    write_json(ctx.output_dir / "train_results.json", metrics)
    return {"metrics": metrics, "params": params}


def _method_outputs(ctx: RunContext) -> dict[str, float]:
    """Each method's final outputs (e.g. a merged adapter model), after the splits are scored."""
    trained = ctx.trained
    found: dict[str, float] = {}
    for method in trained.prepared.methods:
        found.update(method.save_outputs(trained.trainer, trained.prepared.method_args, ctx.output_dir,
                                         trained.datasets))
    return found


def _hyperparameters(ctx: RunContext) -> dict[str, Any]:
    if ctx.fitted is not None:
        config = resolved_config(*ctx.config_objects)
        keep = {"method", "seed", "max_seq_length", *ctx.fitted.method.hyperparameter_names()}
        return {k: v for k, v in config.items() if k in keep and v is not None}
    if ctx.trained is None:
        config = resolved_config(*ctx.config_objects)
        return {k: v for k, v in config.items() if k != "output_dir"}
    args = ctx.train_args
    hyper = {k: getattr(getattr(args, k), "value", getattr(args, k)) for k in _CARD_HYPERPARAMETERS}
    max_len = resolved_config(*ctx.config_objects).get("max_seq_length")
    if max_len is not None:
        hyper["max_seq_length"] = max_len
    hyper.update(ctx.task.card_settings(ctx))
    hyper["world_size"] = args.world_size
    return hyper


def _method_card(ctx: RunContext, metrics: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """Method name, description, parameter facts, sections and tags for the card."""
    if ctx.fitted is not None:
        method, args = ctx.fitted.method, ctx.fitted.method_args
        parts = method.card_parts(args, ctx.output_dir, ctx.task, dict(params or {}))
        return {"method": method.name, "method_description": parts.description or method.name,
                "trainable_parameters": parts.params, "extra_sections": {"Resources": resources_section(metrics),
                                                                         **parts.sections}, "tags": parts.tags}
    if ctx.trained is None:
        return {"method": ctx.scores.method, "method_description": ctx.scores.description,
                "trainable_parameters": None, "extra_sections": {}, "tags": ["baseline", "no-training"]}
    prepared = ctx.trained.prepared
    sections = {"Resources": resources_section(metrics)}
    description, facts, tags = prepared.method_args.method, dict(params or {}), []
    for index, method in enumerate(prepared.methods):
        parts = method.card_parts(prepared.method_args, ctx.output_dir, ctx.task, facts)
        if index == 0 and parts.description:  # the chosen method describes the run; the others add sections
            description = parts.description
        facts = parts.params
        sections.update(parts.sections)
        tags += parts.tags
    return {"method": prepared.method_args.method, "method_description": description, "trainable_parameters": facts,
            "extra_sections": sections, "tags": tags}


def _write_card(ctx: RunContext, metrics: dict[str, Any], params: dict[str, Any] | None) -> None:
    data = ctx.data
    method = _method_card(ctx, metrics, params)
    sections = {**method.pop("extra_sections"), **ctx.task.card_sections(ctx), **ctx.sections}
    tags = list(dict.fromkeys(method.pop("tags") + ctx.task.card_tags(ctx)))
    card = build_model_card(CardSpec(
        model_name=ctx.output_dir.name, base_model=ctx.base_model, task=ctx.task.card_task(ctx),
        labels=list(getattr(data, "labels", None) or []), dataset_name=data.name,
        dataset_description=getattr(data, "description", None), dataset_license=getattr(data, "license", None),
        hub_dataset_id=getattr(data, "hub_dataset_id", None), metrics=ctx.task.card_metrics(metrics),
        hyperparameters=_hyperparameters(ctx), extra_sections=sections, tags=tags or None,
        command=reproduce_command() + "\n# or, from this folder's settings:\n" + rerun_command(ctx.recipe),
        **method,
    ))
    write_text_atomic(ctx.output_dir / "README.md", str(card))


def _write_environment(ctx: RunContext) -> None:
    config = resolved_config(*ctx.config_objects)
    seed = int(config.get("seed", 0) or 0)
    extra = {"data_name": ctx.data.name, "data_version": getattr(ctx.data, "version", None)}
    if ctx.trained is not None:
        extra["world_size"] = ctx.train_args.world_size
    extra.update(ctx.task.environment(ctx))
    write_json(ctx.output_dir / "environment.json", environment_info(seed, ctx.data.fingerprint, extra))


def _merge_all_results(out: Path, metrics: dict[str, Any]) -> None:
    path = out / "all_results.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    write_json(path, {**saved, **metrics})


def finish(ctx: RunContext) -> dict[str, float]:
    """Save, score and write every output of a run into ``ctx.output_dir``; returns all its metrics.

    Training runs (``ctx.trained``): the model (safetensors; an adapter run saves the adapter and its head, plus
    whatever its method adds, e.g. ``merged/``) and tokenizer, ``train_results.json``, the task's scores of the
    validation and test splits (``eval_results.json``, ``test_results.json``, predictions), ``trainer_state.json``,
    ``training_curves.png``. Runs fitted without the Trainer (``ctx.fitted``): the classifier (safetensors),
    ``train_results.json`` and the same split files. Evaluation-only runs (``ctx.scores``): the split's results file
    and predictions.
    Every run: ``all_results.json``, ``run_config.yaml``, ``environment.json``, the card ``README.md`` (naming
    ``ctx.recipe`` in its command), ``ctx.files``; then, for a trained or fitted run with
    ``--push_to_hub``, one push.

    Every process of a multi-process run must call it (saving and prediction are collective); only the main
    process writes. When ``ctx.output_dir`` is the folder the run holds (``prepare_output_dir``), its marker is
    removed once every file is written (before the push) and the folder is released after the push.

    Args:
        ctx: What the run was and what it produced.

    Returns:
        Every metric of the run (``train_*``, ``eval_*``, ``test_*``, the task's and the numbers of
        ``ctx.results``).
    """
    ensure_claimed(ctx.output_dir)  # the folder is locked and marked unfinished before the first file lands
    if ctx.fitted is not None:
        saved = _save_fitted(ctx)
    else:
        saved = _save_model(ctx) if ctx.trained is not None else {"metrics": {}, "params": None}
    metrics = dict(saved["metrics"])
    evaluation = ctx.task.evaluate(ctx)
    metrics.update(evaluation)
    metrics.update({k: v for k, v in ctx.results.items() if isinstance(v, (int, float))})
    if not ctx.is_main_process:
        return metrics
    out = ctx.output_dir
    out.mkdir(parents=True, exist_ok=True)
    plot_evaluation(evaluation)
    if ctx.trained is not None:
        metrics.update(_method_outputs(ctx))
        history = ctx.trained.trainer.state.log_history
        if any("loss" in entry or "eval_loss" in entry for entry in history):
            plot_training_curves(history, out / "training_curves.png", title=f"{ctx.data.name}: training curves")
    if ctx.scores is not None:  # a training run's split files come from the Trainer (save_metrics)
        write_json(out / f"{ctx.scores.split}_results.json", {**evaluation, **ctx.results})
    for name, content in ctx.files.items():
        write_json(out / name, content)
    _merge_all_results(out, {**metrics, **ctx.results})
    write_run_config(out, *ctx.config_objects, recipe=ctx.recipe)
    # the Trainer pickles its arguments next to the model; run_config.yaml holds them readably, and a pickle in a
    # folder that may be pushed to the Hub is unsafe to load, so the final folder keeps none
    (out / "training_args.bin").unlink(missing_ok=True)
    _write_environment(ctx)
    _write_card(ctx, metrics, saved["params"])
    mark_finished(out)  # every file is written: from here the folder reads as a finished run
    logger.info("Outputs written to %s", out)
    try:
        if ctx.trained is not None or ctx.fitted is not None:
            trainer = ctx.trained.trainer if ctx.trained is not None else None
            push_run_from_args(ctx.train_args, out, hub_model_id=getattr(trainer, "hub_model_id", None))
    finally:
        release_output_dir(out)
    return metrics
