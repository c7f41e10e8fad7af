"""Train a label-entailment cross-encoder with the Trainer and write the outputs of a fine-tuned run.

:func:`run_entailment_training` is what ``recipes/train_entailment.py`` runs; :func:`load_or_train_entailment_model`
gives other code (e.g. a comparison of strategies) a trained entailment model, training it once when missing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from transformers import set_seed

from tlnlp.config import ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs, apply_method
from tlnlp.models import load_classifier
from tlnlp.runs import RunContext, TrainedRun, finish
from tlnlp.tasks import TASKS, make_compute_metrics
from tlnlp.training import build_trainer, prepare_output_dir
from tlnlp.zeroshot.args import ENTAILMENT_LABELS, EntailmentArgs
from tlnlp.zeroshot.entailment import entailment_task_data, is_entailment_model, load_source
from tlnlp.zeroshot.nli import load_nli_model
from tlnlp.zeroshot.options import ScoringOptions
from tlnlp.zeroshot.scoring import evaluate_zero_shot
from tlnlp.zeroshot.specs import resolve_spec

__all__ = ["evaluate_unseen_tasks", "load_or_train_entailment_model", "run_entailment_training"]

logger = logging.getLogger(__name__)


def evaluate_unseen_tasks(model: Any, tokenizer: Any, args: EntailmentArgs, batch_size: int = 32,
                          show_progress: bool = False) -> dict[str, Any]:
    """Score the test split of each ``args.zero_shot_eval_datasets`` zero-shot with ``model``.

    Returns:
        ``{dataset: {"accuracy": ..., "f1_macro": ..., ..., "samples": n, "spec": name, "spec_version": v,
        "chance_accuracy": ...}}``.
    """
    results: dict[str, Any] = {}
    for source in args.zero_shot_eval_datasets:
        data = load_source(source, max_eval=args.zero_shot_max_samples, seed=args.split_seed)
        spec = resolve_spec("auto", data.name, "nli", args.spec_file)
        options = ScoringOptions(batch_size=batch_size, max_length=args.max_seq_length, show_progress=show_progress)
        metrics, _ = evaluate_zero_shot("nli", model, tokenizer, data, spec, options)
        gold = data.splits["test"]["label"]
        majority = max(gold.count(c) for c in set(gold)) / len(gold) if not data.multi_label else None
        results[source] = {**metrics, "samples": len(gold), "spec": spec.name, "spec_version": spec.version,
                           "majority_class_accuracy": majority}
        logger.info("Zero-shot on %s (labels never seen in training): %s", source,
                    {k: round(v, 4) for k, v in metrics.items() if k in ("accuracy", "f1_macro")})
    return results


def _entailment_card_section(records: list[dict[str, Any]], unseen: dict[str, Any]) -> str:
    lines = ["Trained as a cross-encoder on (text, hypothesis) pairs built from labelled data (Yin et al. 2019). "
             "Use it as an NLI model: `pipeline(\"zero-shot-classification\", model=<this folder>)` or "
             "`tlnlp.zeroshot.score_nli`.", "", "| source | version | labels -> hypotheses | pairs (train) |",
             "|---|---|---|---|"]
    for r in records:
        hyps = ", ".join(f"{label}: \"{h}\"" for label, h in zip(r["labels"], r["hypotheses"], strict=True))
        lines.append(f"| {r['name']} | {r['version'] or '-'} | {hyps} | {r['pairs'].get('train', 0)} |")
    if unseen:
        lines += ["", "Zero-shot on tasks whose labels it never saw (test split):", "",
                  "| dataset | samples | accuracy | macro F1 | majority class |", "|---|---|---|---|---|"]
        for name, m in unseen.items():
            chance = "-" if m["majority_class_accuracy"] is None else f"{m['majority_class_accuracy']:.4f}"
            lines.append(f"| {name} | {m['samples']} | {m.get('accuracy', float('nan')):.4f} | "
                         f"{m.get('f1_macro', float('nan')):.4f} | {chance} |")
    return "\n".join(lines) + "\n"


def _unseen_results(unseen: dict[str, Any]) -> dict[str, float]:
    """``zeroshot_<dataset>_<metric>`` for ``all_results.json`` and the returned metrics."""
    found: dict[str, float] = {}
    for name, values in unseen.items():
        short = name.split(":", 1)[-1].replace("/", "_")
        found.update({f"zeroshot_{short}_{k}": v for k, v in values.items()
                      if isinstance(v, float) and k != "majority_class_accuracy"})
    return found


def run_entailment_training(model_args: Any, entail_args: EntailmentArgs, method_args: Any, train_args: Any, *,
                            prepare: Callable[[Any], str | None] = prepare_output_dir,
                            search: Callable[[Mapping[str, Any]], Any] | None = None) -> dict[str, float]:
    """Build entailment pairs, train a cross-encoder, save it and write every output of the run.

    The saved config maps 0 -> ``entailment``, 1 -> ``not_entailment``, so ``pipeline("zero-shot-classification")``
    and :func:`tlnlp.zeroshot.score_nli` accept the folder. Besides a fine-tuned run's files the folder holds
    ``entailment_sources.json`` (datasets, versions, hypotheses) and, when ``zero_shot_eval_datasets`` is set,
    ``zero_shot_results.json`` (also merged into ``all_results.json`` as ``zeroshot_<dataset>_<metric>``). The
    run is written, and pushed with ``--push_to_hub``, once, by :func:`tlnlp.runs.finish`.

    Args:
        model_args: The encoder to train from.
        entail_args: The labelled sources, pairs and unseen tasks.
        method_args: The Trainer method.
        train_args: The ``TrainingArgs``.
        prepare: Guards the output folder and returns the checkpoint to resume from (default
            :func:`tlnlp.training.prepare_output_dir`; a search's lets an interrupted search continue).
        search: A hyperparameter search run before training (:func:`tlnlp.search.search_hook`): its trials train
            on the training pairs and are scored on the validation pairs only (neither the test pairs nor the
            unseen tasks); the best values then train the model.

    Returns:
        Every metric: ``train_*``, ``eval_*``, ``test_*`` on the pairs, and ``zeroshot_*`` on unseen tasks.
    """
    resume = prepare(train_args)
    set_seed(train_args.seed)
    task = TASKS.get("classification")
    data, records = entailment_task_data(entail_args)
    model, tokenizer = load_classifier(model_args, labels=list(ENTAILMENT_LABELS))
    with train_args.main_process_first(desc="tokenize"):
        tokenized = task.tokenize(data, tokenizer, entail_args)
    metric = make_compute_metrics(len(ENTAILMENT_LABELS))
    searched = search({  # trains trials on the training pairs, scores them on validation; sets the best values
        "task": task, "data": data, "model_args": model_args, "method_args": method_args, "train_args": train_args,
        "tokenizer": tokenizer, "datasets": tokenized, "compute_metrics": metric,
        "load_model": lambda: load_classifier(model_args, labels=list(ENTAILMENT_LABELS))[0]}) if search else None
    prepared = apply_method(model, method_args)
    trainer = build_trainer(prepared, tokenizer, tokenized, train_args, compute_metrics=metric)
    train_result = trainer.train(resume_from_checkpoint=resume)
    unseen: dict[str, Any] = {}
    if trainer.is_world_process_zero():  # scored outside the Trainer, on the main process only
        unseen = evaluate_unseen_tasks(trainer.model, tokenizer, entail_args, train_args.per_device_eval_batch_size)
    files: dict[str, Any] = {"entailment_sources.json": records}
    if unseen:
        files["zero_shot_results.json"] = unseen
    return finish(RunContext(
        output_dir=train_args.output_dir, recipe="train_entailment", task=task, data=data,
        base_model=model_args.model_name_or_path, config_objects=(model_args, entail_args, method_args, train_args),
        trained=TrainedRun(trainer, train_result, tokenized, prepared),
        results={**_unseen_results(unseen), **(searched.results if searched else {})}, files=files,
        sections={"Label-entailment training": _entailment_card_section(records, unseen),
                  **(searched.sections if searched else {})}))


def load_or_train_entailment_model(
    output_dir: str | Path,
    *,
    train_datasets: list[str] | None = None,
    model_name_or_path: str = "bundled:minilm",
    device: str = "auto",
    **settings: Any,
) -> tuple[Any, Any]:
    """An entailment model for :func:`~tlnlp.zeroshot.nli.score_nli`, trained once and then reused.

    Loaded from ``output_dir`` when a trained one is there, else trained there first (same steps and outputs as
    ``recipes/train_entailment.py``).

    Args:
        output_dir: Folder of the trained model (created when missing).
        train_datasets: Labelled datasets for the pairs (default: ``bundled:trec6`` and ``bundled:sms_spam``).
        model_name_or_path: The encoder to train from.
        device: Where the loaded model runs.
        **settings: Any field of :class:`~tlnlp.zeroshot.args.EntailmentArgs`, ``MethodArgs`` or
            ``TrainingArgs`` (e.g. ``num_negatives=2``, ``max_samples_per_dataset=2000``, ``num_train_epochs=1``).

    Returns:
        ``(model, tokenizer)``.
    """
    folder = Path(output_dir)
    if not is_entailment_model(folder):
        fields = {cls: {f.name for f in dataclasses.fields(cls)} for cls in (EntailmentArgs, MethodArgs)}
        entail = {k: v for k, v in settings.items() if k in fields[EntailmentArgs]}
        method = {k: v for k, v in settings.items() if k in fields[MethodArgs]}
        rest = {k: v for k, v in settings.items() if k not in entail and k not in method}
        if train_datasets:
            entail["train_datasets"] = list(train_datasets)
        # the recipes' parser and training defaults (length-grouped batches, per-epoch evaluation...), then ours
        (train_args,) = parse_args(TrainingArgs, args=[], defaults={
            "output_dir": str(folder), "overwrite_output_dir": True, "report_to": "none", "save_strategy": "no",
            **rest})
        logger.info("No entailment model in %s: training one", folder)
        run_entailment_training(ModelArgs(model_name_or_path=model_name_or_path), EntailmentArgs(**entail),
                                MethodArgs(**method), train_args)
    return load_nli_model(str(folder), device=device)
