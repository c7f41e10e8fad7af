"""LM domain adaptation (ULMFiT stage 2): train on unlabelled text, report (pseudo-)perplexity, write the run."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainingArguments

from tlnlp.config import write_run_config
from tlnlp.hub.push import push_run_from_args
from tlnlp.training.outputs import environment_info, reproduce_command, write_json

__all__ = ["finish_lm_run", "run_lm_adaptation"]

logger = logging.getLogger(__name__)

_LM_DESCRIPTION = {
    "mlm": "Masked-language-model adaptation: pretraining continued on unlabelled target-domain text, 15% of the "
           "tokens masked, with ULMFiT's discriminative rates and slanted triangular schedule.",
    "clm": "Causal-language-model adaptation: pretraining continued on unlabelled target-domain text (next-token "
           "prediction), with ULMFiT's discriminative rates and slanted triangular schedule.",
}


def _score_section(scores: dict[str, float], objective: str, head_new: bool, held_out: int) -> str:
    measure = "pseudo-perplexity" if objective == "mlm" else "perplexity"
    before, after = scores.get("perplexity_before"), scores.get("perplexity_after")
    lines = [f"Held-out {measure} on {held_out} texts (lower is better): before {before:.2f}, after {after:.2f}."]
    if head_new:
        lines.append("The checkpoint had no weights for the LM head; it was newly initialised, so the 'before' "
                     "figure measures an untrained head, not the backbone's knowledge of the domain.")
    return "\n\n".join(lines)


def finish_lm_run(trainer: Trainer, train_result: Any, train_args: TrainingArguments, *, scores: dict[str, float],
                  objective: str, head_new: bool, data_name: str, data_fingerprint: str, held_out_texts: int,
                  base_model: str, method: str, config_objects: tuple[Any, ...]) -> dict[str, float]:
    """Save the adapted model and write every output of an LM-adaptation run; returns all metrics.

    Written by the main process into ``output_dir``: the model (safetensors, with its LM head: it loads in the
    classification recipe through ``--model_name_or_path``) and tokenizer, ``train_results.json``,
    ``lm_results.json`` (perplexity before/after), ``all_results.json``, ``trainer_state.json``,
    ``training_curves.png``, ``run_config.yaml``, ``environment.json`` and a model card ``README.md``.

    Args:
        trainer: The trainer after ``train()``.
        train_result: What ``train()`` returned.
        train_args: The run's training arguments.
        scores: ``perplexity_before`` and ``perplexity_after`` (pseudo-perplexity for masked LMs).
        objective: ``"mlm"`` or ``"clm"``.
        head_new: Whether the LM head started from random weights.
        data_name: Where the text came from.
        data_fingerprint: sha256 of the texts.
        held_out_texts: Number of held-out texts scored.
        base_model: The model adapted.
        method: The method name (e.g. ``ulmfit``).
        config_objects: The parsed argument objects, for ``run_config.yaml``.

    Returns:
        ``train_*`` metrics plus the scores, ``lm_objective_mlm``, ``lm_head_was_new`` and ``lm_held_out_texts``.
    """
    from tlnlp.hub import build_model_card
    from tlnlp.models import count_parameters
    from tlnlp.report import plot_training_curves

    out = Path(train_args.output_dir)
    metrics = {**train_result.metrics, **scores, "lm_objective_mlm": float(objective == "mlm"),
               "lm_head_was_new": float(head_new), "lm_held_out_texts": float(held_out_texts)}
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return metrics
    write_json(out / "lm_results.json", {**scores, "objective": objective, "measure": "pseudo_perplexity"
                                         if objective == "mlm" else "perplexity", "head_was_new": head_new,
                                         "held_out_texts": held_out_texts})
    write_json(out / "all_results.json", metrics)
    if any("loss" in entry for entry in trainer.state.log_history):
        plot_training_curves(trainer.state.log_history, out / "training_curves.png", title=f"{data_name}: LM loss")
    write_run_config(out, *config_objects)
    (out / "training_args.bin").unlink(missing_ok=True)
    write_json(out / "environment.json", environment_info(train_args.seed, data_fingerprint, {
        "data_name": data_name, "world_size": train_args.world_size, "lm_objective": objective}))
    card = build_model_card(
        model_name=out.name, base_model=base_model, task="fill-mask" if objective == "mlm" else "text-generation",
        labels=[], method=method, method_description=_LM_DESCRIPTION[objective], dataset_name=data_name,
        dataset_description=None, dataset_license=None, hub_dataset_id=None,
        metrics={k: v for k, v in metrics.items() if k.startswith(("perplexity", "train_loss"))},
        hyperparameters={k: getattr(getattr(train_args, k), "value", getattr(train_args, k))
                         for k in ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                                   "seed")},
        command=reproduce_command() + "\n# or, from this folder's settings:\n"
                "accelerate launch recipes/lm_adaptation.py --config run_config.yaml",
        trainable_parameters=count_parameters(trainer.model), tags=["lm-adaptation", objective],
        extra_sections={"Language-model adaptation": _score_section(scores, objective, head_new, held_out_texts)},
    )
    card.save(str(out / "README.md"))
    logger.info("Outputs written to %s", out)
    push_run_from_args(train_args, out, hub_model_id=getattr(trainer, "hub_model_id", None))  # --push_to_hub
    return metrics


def run_lm_adaptation(model_args: Any, text: Any, method_args: Any, train_args: TrainingArguments, *,
                      objective: str = "auto", max_seq_length: int = 128, mlm_probability: float = 0.15,
                      perplexity_max_texts: int | None = 500, resume_from_checkpoint: str | None = None,
                      config_objects: tuple[Any, ...] = ()) -> dict[str, float]:
    """Continue pretraining a backbone on unlabelled text and report held-out (pseudo-)perplexity before and after.

    Masked LM (15% masking) for encoders, causal LM for decoders (:func:`tlnlp.models.lm.load_language_model`);
    the ULMFiT options of ``method_args`` (discriminative rates, slanted triangular schedule, head warm-up) apply
    as in any training run. The output folder loads in the classification recipe via ``--model_name_or_path``.

    Args:
        model_args: The backbone to adapt.
        text: :class:`tlnlp.data.text.TextData` (training and held-out texts).
        method_args: ``MethodArgs`` (method and ULMFiT options).
        train_args: Training arguments; ``output_dir`` receives the adapted model.
        objective: ``"auto"``, ``"mlm"`` or ``"clm"``.
        max_seq_length: Tokens per training block and per scored text.
        mlm_probability: Share of tokens masked (MLM).
        perplexity_max_texts: Held-out texts scored before and after (None: all).
        resume_from_checkpoint: Checkpoint folder to resume from.
        config_objects: Parsed argument objects for ``run_config.yaml``.

    Returns:
        ``train_*`` metrics, ``perplexity_before``/``perplexity_after`` (pseudo-perplexity for masked LMs),
        ``lm_objective_mlm``, ``lm_head_was_new`` and ``lm_held_out_texts``.
    """
    from tlnlp.methods import apply_method
    from tlnlp.tasks.language_modeling.blocks import SparseMaskedLMLoss, lm_collator, tokenize_for_lm
    from tlnlp.tasks.language_modeling.model import load_language_model
    from tlnlp.tasks.language_modeling.scoring import language_model_score
    from tlnlp.training.trainer import build_trainer

    loaded = load_language_model(model_args, objective)
    model, tokenizer = loaded.model, loaded.tokenizer
    if loaded.head_is_new and not method_args.ulmfit_settings().head_warmup_steps:
        logger.warning("The %s head is new and --head_warmup_steps is 0: the lower layers start training against "
                       "an untrained head.", loaded.objective.upper())
    model, param_groups = apply_method(model, method_args)
    with train_args.main_process_first(desc="tokenize"):
        blocks = {"train": tokenize_for_lm(text.train, tokenizer, max_seq_length, loaded.objective),
                  "validation": tokenize_for_lm(text.validation, tokenizer, max_seq_length, loaded.objective)}
    held_out = text.validation[:perplexity_max_texts] if perplexity_max_texts else text.validation
    model.to(train_args.device)
    measure_kwargs = {"max_length": max_seq_length, "show_progress": train_args.process_index == 0}
    before = language_model_score(model, tokenizer, held_out, loaded.objective, **measure_kwargs)
    logger.info("Held-out %s before adaptation: %.3f", *next(iter(before.items())))
    trainer = build_trainer(model, tokenizer, blocks, train_args, param_groups, method_args=method_args,
                            data_collator=lm_collator(tokenizer, loaded.objective, mlm_probability))
    sparse = (SparseMaskedLMLoss(model) if loaded.objective == "mlm" and model.get_output_embeddings() is not None
              else contextlib.nullcontext())
    with sparse:  # masked LM: project only the masked positions onto the vocabulary (same loss, less compute)
        train_result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    after = language_model_score(trainer.model, tokenizer, held_out, loaded.objective, **measure_kwargs)
    logger.info("Held-out %s after adaptation: %.3f", *next(iter(after.items())))
    scores = {"perplexity_before": next(iter(before.values())), "perplexity_after": next(iter(after.values()))}
    return finish_lm_run(trainer, train_result, train_args, scores=scores, objective=loaded.objective,
                         head_new=loaded.head_is_new, data_name=text.name, data_fingerprint=text.fingerprint,
                         held_out_texts=len(held_out), base_model=str(model_args.model_name_or_path),
                         method=method_args.method, config_objects=config_objects)
