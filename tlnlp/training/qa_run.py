"""``finish_qa_run``: answer the validation and test questions and write every output of a QA run.

The reported EM/F1 are computed from exactly the answers written to ``predictions.json`` (validation, keys
``eval_*``) and ``test_predictions.json`` (test, keys ``test_*``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from tlnlp.config import DataArgs, ModelArgs, write_run_config
from tlnlp.config.qa_args import QAArgs
from tlnlp.hub.push import push_run_from_args
from tlnlp.methods import MethodArgs
from tlnlp.tasks.qa.evaluate import evaluate_qa_split
from tlnlp.training.outputs import environment_info, reproduce_command, write_json

__all__ = ["evaluate_qa_split", "finish_qa_run"]

logger = logging.getLogger(__name__)

_METHOD_DESCRIPTIONS = {
    "full": "Full fine-tuning: every weight of the pretrained backbone and the new span-prediction head is trained.",
    "feature_extraction": "Feature extraction: the pretrained backbone is frozen and only the span-prediction head "
                          "(start/end logits per token) is trained on its features.",
}
_CARD_HYPERPARAMETERS = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                         "gradient_accumulation_steps", "weight_decay", "warmup_steps", "lr_scheduler_type",
                         "optim", "seed")
_QA_SETTINGS = ("version_2_with_negative", "doc_stride", "n_best_size", "max_answer_length",
                "null_score_diff_threshold")


def _save_model(trainer: Trainer, out: Path, model_args: ModelArgs, params: dict[str, Any]) -> dict[str, Any]:
    from tlnlp.training.adapter_outputs import is_peft_model, prepare_adapter_save, save_adapter_extras
    from tlnlp.training.resources import resource_metrics

    adapter = is_peft_model(trainer.model)
    if adapter:
        prepare_adapter_save(trainer.model, model_args.model_name_or_path)
    trainer.save_model()
    if not trainer.is_world_process_zero():
        return {}
    if adapter:
        save_adapter_extras(trainer.model, out)
    return resource_metrics(params, out, adapter)


def _write_merged(trainer: Trainer, windows: Any, out: Path) -> dict[str, float]:
    """Merge the adapter, save ``merged/`` and compare its start/end logits with the adapter model's."""
    from tlnlp.models import merge_adapter

    rows = windows.select(range(min(16, len(windows))))
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in rows.column_names]
    batch = trainer.data_collator([{k: row[k] for k in keys} for row in rows])
    device = next(trainer.model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items() if k in keys}
    model = trainer.model
    model.eval()
    with torch.no_grad():
        before = model(**batch)
        merged = merge_adapter(model)
        merged.eval()
        after = merged(**batch)
    diff = max(float((before.start_logits - after.start_logits).abs().max()),
               float((before.end_logits - after.end_logits).abs().max()))
    merged.save_pretrained(out / "merged")
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(out / "merged")
    result = {"merge_max_abs_logit_diff": diff, "merge_checked_rows": len(rows)}
    trainer.save_metrics("merge", result)
    return result


def _plot_curves(trainer: Trainer, out: Path, name: str) -> None:
    from tlnlp.report import plot_training_curves

    history = trainer.state.log_history
    if any("loss" in entry or "eval_loss" in entry for entry in history):
        plot_training_curves(history, out / "training_curves.png", title=f"{name}: training curves")


def _card(out: Path, data: Any, model_args: ModelArgs, data_args: DataArgs, qa_args: QAArgs,
          method_args: MethodArgs, train_args: TrainingArguments, metrics: dict[str, float],
          params: dict[str, Any]) -> None:
    from tlnlp.hub import build_model_card
    from tlnlp.training.adapter_outputs import adapter_card_parts

    hyper: dict[str, Any] = {k: getattr(getattr(train_args, k), "value", getattr(train_args, k))
                             for k in _CARD_HYPERPARAMETERS}
    hyper["max_seq_length"] = data_args.max_seq_length
    hyper.update({k: getattr(qa_args, k) for k in _QA_SETTINGS})
    hyper["world_size"] = train_args.world_size
    description, params, sections, tags = adapter_card_parts(out, method_args, metrics, params,
                                                             _METHOD_DESCRIPTIONS.get(method_args.method))
    sections["Answering questions"] = (
        "```python\nimport tlnlp\n\n"
        f'qa = tlnlp.load_pipeline("{out.name}")  # a question-answering pipeline with this run\'s window settings\n'
        'qa(question="Who built the first bicycle?", context="The first bicycle was built by ...")\n```\n\n'
        "`predictions.json` holds the validation answers behind the `eval_*` scores, `test_predictions.json` "
        "the test answers; `*nbest_predictions.json` list the candidates with their scores.")
    card = build_model_card(
        model_name=out.name, base_model=model_args.model_name_or_path, task="question-answering", labels=[],
        method=method_args.method, method_description=description, dataset_name=data.name,
        dataset_description=data.description, dataset_license=data.license, hub_dataset_id=data.hub_dataset_id,
        metrics=metrics, hyperparameters=hyper, trainable_parameters=params, extra_sections=sections,
        tags=(tags or []) + ["question-answering"],
        command=reproduce_command() + "\n# or, from this folder's settings:\n"
                "accelerate launch recipes/question_answering.py --config run_config.yaml",
    )
    card.save(str(out / "README.md"))


def finish_qa_run(trainer: Trainer, train_result: Any, windows: Any, data: Any, model_args: ModelArgs,
                  data_args: DataArgs, qa_args: QAArgs, method_args: MethodArgs,
                  train_args: TrainingArguments) -> dict[str, float]:
    """Save the model, answer validation and test, and write every output into ``train_args.output_dir``.

    Written (main process): the model (safetensors; an adapter run: the adapter and head) and tokenizer,
    ``predictions.json`` / ``nbest_predictions.json`` / ``null_odds.json`` (validation), the same with a
    ``test_`` prefix (test), ``train_results.json``, ``eval_results.json``, ``test_results.json``,
    ``all_results.json``, ``trainer_state.json``, ``training_curves.png``, ``run_config.yaml``,
    ``environment.json`` and the model card ``README.md``.

    Args:
        trainer: The Trainer after ``train()``.
        train_result: What ``train()`` returned.
        windows: The tokenized windows of every split.
        data: The :class:`~tlnlp.data.qa.QAData` the windows come from.
        model_args: Model settings (for the card and config).
        data_args: Data settings.
        qa_args: Question-answering settings.
        method_args: Transfer-method settings.
        train_args: Training settings.

    Returns:
        Every metric (``train_*``, ``eval_*``, ``test_*``).
    """
    from tlnlp.models import count_parameters
    from tlnlp.training.adapter_outputs import is_peft_model

    out = Path(train_args.output_dir)
    params = count_parameters(trainer.model)
    metrics = dict(train_result.metrics)
    metrics.update({"train_samples": len(data.splits["train"]), "train_windows": len(windows["train"]),
                    "train_trainable_parameters": params["trainable"], "train_total_parameters": params["total"]})
    metrics.update(_save_model(trainer, out, model_args, params))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    threshold = qa_args.null_score_diff_threshold
    for prefix, split in (("eval", "validation"), ("test", "test")):
        if split not in windows:
            continue
        if split == "test" and qa_args.null_threshold_from_validation and "eval_best_f1_thresh" in metrics:
            threshold = float(metrics["eval_best_f1_thresh"])
            logger.info("Test answers use validation's best null threshold %.4f.", threshold)
        split_metrics, _ = evaluate_qa_split(trainer, data.splits[split], windows[split], qa_args, prefix,
                                             threshold, out)
        trainer.log_metrics(prefix, split_metrics)
        trainer.save_metrics(prefix, split_metrics)
        metrics.update(split_metrics)
    if not trainer.is_world_process_zero():
        return metrics
    if is_peft_model(trainer.model) and getattr(method_args, "merge_adapter", False):
        metrics.update(_write_merged(trainer, windows.get("validation", windows["train"]), out))
    _plot_curves(trainer, out, data.name)
    write_run_config(out, model_args, data_args, qa_args, method_args, train_args)
    (out / "training_args.bin").unlink(missing_ok=True)  # settings live in run_config.yaml; no pickle kept
    write_json(out / "environment.json", environment_info(train_args.seed, data.fingerprint, {
        "data_name": data.name, "data_version": data.version, "world_size": train_args.world_size,
        "task": "question-answering", "answer_starts_repaired": data.repaired,
        **{k: getattr(qa_args, k) for k in _QA_SETTINGS}, "max_seq_length": data_args.max_seq_length}))
    _card(out, data, model_args, data_args, qa_args, method_args, train_args, metrics, params)
    logger.info("Outputs written to %s", out)
    push_run_from_args(train_args, out, hub_model_id=getattr(trainer, "hub_model_id", None))  # --push_to_hub
    return metrics
