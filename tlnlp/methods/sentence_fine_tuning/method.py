"""Fine-tuning over sentence embeddings: the encoder and a linear head on its unit-length embeddings, with the Trainer.

Unlike ``--method full`` (BERT's pooler and [CLS] token with a new head), this trains the model as its
sentence-transformers files describe it (its own pooling, normalised), so the head reads the same vectors as
embedding zero-shot and feature extraction; and with ``--head_init zero_shot`` it starts at the zero-shot label
prototypes and is pulled towards them while the encoder moves. ``auto`` chooses the pull by cross-validation of
the anchored logistic head on the frozen encoder's embeddings of the labelled rows (a fit of seconds, where
cross-validating the fine-tuning itself would cost one training per fold and strength).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np
import torch
from transformers import DataCollatorWithPadding, PrinterCallback, Trainer

from tlnlp.methods.base import register_method
from tlnlp.methods.heads.fit import choose_prior_strength
from tlnlp.methods.heads.method import EmbeddingMethod, FitInputs, FitOutcome
from tlnlp.methods.heads.options import HeadOptions, check_head_options, prior_strength
from tlnlp.methods.sentence_fine_tuning.model import EncoderWithHead, tokenize_rows
from tlnlp.models.sentence_classifier import SentenceTransformerForSequenceClassification

__all__ = ["SentenceFineTuning"]

logger = logging.getLogger(__name__)


def _anchor(encoder: Any, inputs: FitInputs, args: Any) -> tuple[np.ndarray | None, float | None, dict[str, Any]]:
    """The head's start (the prototypes, or None), the pull's strength and the record of how it was chosen."""
    info: dict[str, Any] = {"head": "linear", "head_init": "zero_shot" if inputs.prior else "random",
                            "trained_with_encoder": True}
    if inputs.prior is None:
        return None, None, info
    prior = inputs.prior.weights(lambda texts: inputs.embed(encoder, texts))
    strength = prior_strength(args.head_prior_strength)
    if strength is None:
        features = inputs.embed(encoder, inputs.texts)
        strength, info["prior_strength_search"] = choose_prior_strength(
            features.astype(np.float64), np.asarray(inputs.labels, dtype=np.int64), prior, inputs.seed)
    info["head_prior_strength"] = strength
    return prior, strength, info


def _training_args(training: Any) -> Any:
    """The run's ``TrainingArguments`` for the fit alone: the splits are scored after it, and pushed once."""
    return dataclasses.replace(training, eval_strategy="no", load_best_model_at_end=False, push_to_hub=False,
                               metric_for_best_model=None)


def _optimizer(model: EncoderWithHead, training: Any, args: Any, anchored: bool) -> torch.optim.Optimizer:
    """AdamW: the encoder at ``--learning_rate``, the head at ``--head_learning_rate`` (no decay when anchored)."""
    return torch.optim.AdamW([
        {"params": list(model.encoder.parameters()), "lr": training.learning_rate,
         "weight_decay": training.weight_decay},
        {"params": list(model.head.parameters()), "lr": args.head_learning_rate,
         "weight_decay": 0.0 if anchored else training.weight_decay},
    ], betas=(training.adam_beta1, training.adam_beta2), eps=training.adam_epsilon)


@register_method
class SentenceFineTuning(EmbeddingMethod):
    """``--method sentence_fine_tuning``: fine-tune the sentence encoder and a linear head over its embeddings."""

    name = "sentence_fine_tuning"
    options = HeadOptions
    needs_training_args = True
    description = ("Fine-tuning over sentence embeddings: every weight of the sentence encoder (its own pooling, "
                   "unit-length embeddings) and a linear {head} on its embeddings are trained together with the "
                   "Trainer (the encoder at --learning_rate, the head at --head_learning_rate).")

    def validate(self, args: Any) -> None:
        """Check the head flags (every method's run carries them)."""
        check_head_options(args)

    def fit(self, encoder: Any, inputs: FitInputs, args: Any) -> FitOutcome:
        """Train ``encoder`` and the head with the Trainer on the labelled rows (resuming from a checkpoint).

        Raises:
            ValueError: ``inputs.training`` (the run's ``TrainingArguments``) is missing.
        """
        if inputs.training is None:
            raise ValueError("sentence_fine_tuning trains with the Trainer and needs the run's TrainingArguments "
                             "(FitInputs.training).")
        start = time.perf_counter()
        encoder.eval()
        prior, strength, info = _anchor(encoder, inputs, args)
        anchor = (prior, strength, len(inputs.texts)) if prior is not None and strength else None
        torch.manual_seed(inputs.seed)
        model = EncoderWithHead(encoder, len(inputs.label_names), start=prior, anchor=anchor)
        training = _training_args(inputs.training)
        trainer = Trainer(model=model, args=training,
                          train_dataset=tokenize_rows(encoder, inputs.texts, inputs.labels, inputs.max_length),
                          data_collator=DataCollatorWithPadding(encoder.tokenizer),
                          optimizers=(_optimizer(model, training, args, anchor is not None), None))
        if not inputs.show_progress:  # quiet: no bar (disable_tqdm) and no printed logs either
            trainer.remove_callback(PrinterCallback)
        result = trainer.train(resume_from_checkpoint=inputs.resume_from)
        model.eval()
        classifier = SentenceTransformerForSequenceClassification(
            encoder, model.head.weight.detach().cpu().numpy(), model.head.bias.detach().cpu().numpy(),
            inputs.label_names, head="linear", max_length=inputs.max_length, bf16=inputs.bf16)
        metrics = {"train_runtime": time.perf_counter() - start, "train_samples": len(inputs.texts),
                   "train_loss": float(result.training_loss), "train_steps": int(result.global_step)}
        found = {"head": info} | ({"prior_source": inputs.prior.source} if inputs.prior is not None else {})
        return FitOutcome(classifier, metrics, found)
