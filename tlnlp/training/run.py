"""``finish_run``: evaluate, predict and write every output of a classification run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from transformers import Trainer, TrainingArguments

from tlnlp.config import DataArgs, ModelArgs, write_run_config
from tlnlp.hub.push import push_run_from_args
from tlnlp.methods import MethodArgs
from tlnlp.training.outputs import environment_info, reproduce_command, write_json, write_predictions

__all__ = ["finish_run"]

logger = logging.getLogger(__name__)

_METHOD_DESCRIPTIONS = {
    "full": "Full fine-tuning: every weight of the pretrained backbone and the new classification head is trained.",
    "feature_extraction": "Feature extraction: the pretrained backbone is frozen (its weights are unchanged) and only "
                          "the classification head is trained on its features.",
    "ulmfit": "ULMFiT (Howard & Ruder 2018): every weight is fine-tuned with discriminative learning rates (each lower "
              "layer group's rate divided by a constant factor), a slanted triangular schedule and gradual unfreezing "
              "from the head down; see learning_rates.png for each group's rate and thaw step.",
}

_CARD_HYPERPARAMETERS = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                         "gradient_accumulation_steps", "weight_decay", "warmup_steps", "lr_scheduler_type",
                         "optim", "seed", "train_sampling_strategy")


def _evaluate_splits(trainer: Trainer, tokenized: Any) -> tuple[dict[str, float], Any]:
    metrics: dict[str, float] = {}
    if "validation" in tokenized:
        eval_metrics = trainer.evaluate(tokenized["validation"], metric_key_prefix="eval")
        eval_metrics["eval_samples"] = len(tokenized["validation"])
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        metrics.update(eval_metrics)
    test_out = None
    if "test" in tokenized:
        test_out = trainer.predict(tokenized["test"], metric_key_prefix="test")
        test_metrics = dict(test_out.metrics)
        test_metrics["test_samples"] = len(tokenized["test"])
        trainer.log_metrics("test", test_metrics)
        trainer.save_metrics("test", test_metrics)
        metrics.update(test_metrics)
    return metrics, test_out


def _write_test_outputs(out: Path, data: Any, test_out: Any, threshold: float) -> None:
    from tlnlp.report import plot_confusion_matrix

    logits = test_out.predictions[0] if isinstance(test_out.predictions, tuple) else test_out.predictions
    preds = write_predictions(out / "predictions.jsonl", data.splits["test"], np.asarray(logits), data.labels,
                              data.multi_label, threshold)
    if not data.multi_label:
        gold = np.asarray(data.splits["test"]["label"])
        plot_confusion_matrix(gold, np.asarray(preds), data.labels, out / "confusion_matrix.png",
                              title=f"{data.name} (test)")


def _plot_curves(trainer: Trainer, out: Path, name: str) -> None:
    from tlnlp.report import plot_training_curves

    history = trainer.state.log_history
    if any("loss" in entry or "eval_loss" in entry for entry in history):
        plot_training_curves(history, out / "training_curves.png", title=f"{name}: training curves")


def _write_card(out: Path, data: Any, model_args: ModelArgs, data_args: DataArgs, method_args: MethodArgs,
                train_args: TrainingArguments, metrics: dict[str, float], params: dict[str, Any]) -> None:
    from tlnlp.hub import build_model_card
    from tlnlp.training.adapter_outputs import adapter_card_parts

    hyper: dict[str, Any] = {k: getattr(train_args, k) for k in _CARD_HYPERPARAMETERS}
    hyper = {k: getattr(v, "value", v) for k, v in hyper.items()}  # enums -> their names
    hyper["max_seq_length"] = data_args.max_seq_length
    hyper["world_size"] = train_args.world_size
    description, params, sections, tags = adapter_card_parts(out, method_args, metrics, params,
                                                             _METHOD_DESCRIPTIONS.get(method_args.method))
    card = build_model_card(
        model_name=Path(train_args.output_dir).name,
        base_model=model_args.model_name_or_path,
        task="text-classification",
        labels=data.labels,
        method=method_args.method,
        method_description=description,
        dataset_name=data.name,
        dataset_description=data.description,
        dataset_license=data.license,
        hub_dataset_id=data.hub_dataset_id,
        metrics=metrics,
        hyperparameters=hyper,
        command=reproduce_command() + "\n# or, from this folder's settings:\n"
                "accelerate launch recipes/classification.py --config run_config.yaml",
        trainable_parameters=params,
        extra_sections=sections,
        tags=tags,
    )
    card.save(str(out / "README.md"))


def finish_run(
    trainer: Trainer,
    train_result: Any,
    tokenized: Any,
    data: Any,
    model_args: ModelArgs,
    data_args: DataArgs,
    method_args: MethodArgs,
    train_args: TrainingArguments,
) -> dict[str, float]:
    """Save the model and write every output of a run into ``train_args.output_dir``; returns all metrics.

    Written (by the main process only): the model (safetensors) and tokenizer, ``train_results.json``,
    ``eval_results.json``, ``test_results.json``, ``all_results.json``, ``trainer_state.json``,
    ``predictions.jsonl`` and ``confusion_matrix.png`` for the test split, ``training_curves.png``,
    ``run_config.yaml``, ``environment.json`` and the model card ``README.md``.

    Every run also reports what it cost (:func:`tlnlp.training.resources.resource_metrics`: trainable
    parameters, weights on disk, peak RSS; train time is ``train_runtime``). An adapter run saves the adapter
    only (``adapter_model.safetensors`` with the head, ``adapter_config.json`` naming the base model,
    ``task_config.json`` with the labels); ``--merge_adapter`` also writes the merged model to ``merged/`` and
    records how far its logits are from the adapter model's (``merge_max_abs_logit_diff``).
    """
    from tlnlp.models import count_parameters
    from tlnlp.training.adapter_outputs import is_peft_model, prepare_adapter_save, save_adapter_extras, write_merged
    from tlnlp.training.resources import resource_metrics

    out = Path(train_args.output_dir)
    params = count_parameters(trainer.model)
    metrics = dict(train_result.metrics)
    metrics["train_samples"] = len(tokenized["train"])
    metrics["train_trainable_parameters"] = params["trainable"]
    metrics["train_total_parameters"] = params["total"]
    adapter = is_peft_model(trainer.model)
    if adapter:
        prepare_adapter_save(trainer.model, model_args.model_name_or_path)
    trainer.save_model()
    if trainer.is_world_process_zero():
        if adapter:
            save_adapter_extras(trainer.model, out)
        metrics.update(resource_metrics(params, out, adapter))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    split_metrics, test_out = _evaluate_splits(trainer, tokenized)
    metrics.update(split_metrics)
    if not trainer.is_world_process_zero():
        return metrics
    if test_out is not None:
        _write_test_outputs(out, data, test_out, data_args.multi_label_threshold)
    if adapter and method_args.merge_adapter:
        metrics.update(write_merged(trainer, tokenized, out))
    _plot_curves(trainer, out, data.name)
    write_run_config(out, model_args, data_args, method_args, train_args)
    # the Trainer pickles its arguments next to the model; run_config.yaml holds them readably, and a pickle in a
    # folder that may be pushed to the Hub is unsafe to load, so the final folder keeps none
    (out / "training_args.bin").unlink(missing_ok=True)
    env = environment_info(train_args.seed, data.fingerprint, {
        "data_name": data.name, "data_version": data.version, "world_size": train_args.world_size,
        "labels": data.labels, "multi_label": data.multi_label})
    write_json(out / "environment.json", env)
    _write_card(out, data, model_args, data_args, method_args, train_args, metrics, params)
    logger.info("Outputs written to %s", out)
    push_run_from_args(train_args, out, hub_model_id=getattr(trainer, "hub_model_id", None))  # --push_to_hub
    return metrics
