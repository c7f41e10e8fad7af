"""``EmbeddingMethod``: a method that encodes texts with a sentence encoder and fits a linear head, no Trainer.

The recipes and the ladder call :meth:`EmbeddingMethod.fit` with the loaded encoder and the labelled rows
(:class:`FitInputs`); it returns the encoder with its head
(:class:`~tlnlp.models.sentence_classifier.SentenceTransformerForSequenceClassification`) and what to record
(:class:`FitOutcome`). Saved runs reload for inference through :meth:`EmbeddingMethod.reload`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from tlnlp.methods.base import CardParts, Method
from tlnlp.methods.heads.fit import fit_head
from tlnlp.methods.heads.options import HeadOptions, LabelPrior, pseudo_per_class
from tlnlp.models.sentence_classifier import (
    SentenceTransformerForSequenceClassification,
    encode_normalized,
    is_sentence_classifier,
)

__all__ = ["EmbeddingMethod", "FitInputs", "FitOutcome", "head_section"]

logger = logging.getLogger(__name__)


@dataclass
class FitInputs:
    """The labelled rows and settings of one fit.

    Attributes:
        texts: Training texts.
        labels: Their label ids.
        label_names: Every label's name, in id order.
        prior: The zero-shot prior (``--head_init zero_shot``), else None.
        seed: Seed of sampling, folds and initialisation.
        output_dir: The run's folder (methods that checkpoint write ``checkpoint-*`` there).
        max_length: Texts are cut to this many tokens (None: the encoder's own maximum).
        resume_from: A checkpoint folder to resume from, or None.
        show_progress: Show progress bars.
        training: The run's ``TrainingArguments``, for a method that trains with the Trainer (rate, epochs,
            batch size, checkpoints); None for the others.
        bf16: Encode under bf16 autocast (the run's ``--bf16``, once resolved).
        unlabeled: Unlabelled texts the head self-trains on (``--self_training_texts``), or None.
    """

    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    prior: LabelPrior | None = None
    seed: int = 0
    output_dir: Path | None = None
    max_length: int | None = None
    resume_from: str | None = None
    show_progress: bool = True
    training: Any = None
    bf16: bool = False
    unlabeled: list[str] | None = None

    def embed(self, encoder: Any, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` under ``encoder``, at this fit's length and precision."""
        return encode_normalized(encoder, texts, max_length=self.max_length, show_progress=show_progress,
                                 bf16=self.bf16)


@dataclass
class FitOutcome:
    """What a fit produced.

    Attributes:
        classifier: The encoder and its head, ready to predict and save.
        metrics: ``train_*`` numbers (``train_runtime``, ``train_samples``...).
        info: How the head was fitted (JSON-able; the chosen prior strength, the body's training...).
    """

    classifier: SentenceTransformerForSequenceClassification
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def head_section(info: dict[str, Any]) -> str:
    """The card's markdown on the head: its kind, its start and the prior strength (and how it was chosen)."""
    head = info.get("head", {})
    kind = "logistic regression (scikit-learn)" if head.get("head") == "logistic" else "torch linear layer"
    if head.get("trained_with_encoder"):
        kind = "linear layer trained with the encoder"
    lines = [f"- Head: {kind} on unit-length sentence embeddings, started at "
             f"{'the zero-shot label prototypes' if head.get('head_init') == 'zero_shot' else 'the usual start'}."]
    if "head_prior_strength" in head:
        search = head.get("prior_strength_search")
        how = (f"chosen by {search['folds']}-fold cross-validation (3 repeats, log-loss) on the labelled training "
               "rows only" if search and search.get("folds") else "set by --head_prior_strength")
        if search and search.get("folds") and head.get("trained_with_encoder"):
            how += " (of the anchored logistic head on the frozen encoder's embeddings)"
        strength = head["head_prior_strength"]
        pull = f"strength {strength:g}" if strength else "none (strength 0: the prior was dropped)"
        lines.append(f"- Pull towards the prototypes: {pull}, {how}.")
    if info.get("prior_source"):
        lines.append(f"- Prototypes: {info['prior_source']}.")
    if head.get("self_training"):
        lines.append(self_training_line(head["self_training"], head.get("self_training_search")))
    return "\n".join(lines)


def self_training_line(found: dict[str, Any], search: dict[str, Any] | None) -> str:
    """The card's line on self-training: how many unlabelled texts, how many joined, and how that was chosen."""
    how = (f"chosen by {search['folds']}-fold cross-validation (3 repeats) on the labelled training rows only"
           if search and search.get("folds") else "set by --self_training_per_class")
    if search and search.get("fold_bodies"):
        how = (f"chosen after the body's epochs by {search['folds']}-fold cross-validation on the labelled training "
               "rows only, a body trained per fold")
    if not found.get("pseudo_rows"):
        return (f"- Self-training: none ({found['per_class']} pseudo-labelled texts per class of "
                f"{found['pool_rows']} unlabelled, {how}).")
    return (f"- Self-training: the head labelled {found['pool_rows']} unlabelled texts; the {found['pseudo_rows']} "
            f"it was surest of (up to {found['per_class']} per class, {how}) joined the labelled rows and the "
            "head was fitted again.")


class EmbeddingMethod(Method):
    """A method that trains a linear head on sentence embeddings (and perhaps the encoder) without the Trainer."""

    trains_with_trainer: ClassVar[bool] = False
    #: Whether the fit changes the encoder's weights (SetFit) or only the head (feature extraction).
    trains_encoder: ClassVar[bool] = True
    #: Whether :meth:`fit` trains with the Trainer and reads the run's ``TrainingArguments`` (``FitInputs.training``).
    needs_training_args: ClassVar[bool] = False

    def fit(self, encoder: Any, inputs: FitInputs, args: Any) -> FitOutcome:
        """Train on ``inputs`` starting from ``encoder`` (a ``SentenceTransformer``); subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement fit.")

    def fit_head_on(self, encoder: Any, inputs: FitInputs, args: Any) -> FitOutcome:
        """Encode the training rows once with ``encoder`` (frozen) and fit the head ``args`` describe."""
        start = time.perf_counter()
        encoder.eval()
        features = inputs.embed(encoder, inputs.texts, show_progress=inputs.show_progress)
        prior = None
        if inputs.prior is not None:
            prior = inputs.prior.weights(lambda texts: inputs.embed(encoder, texts))
        pool = None
        if inputs.unlabeled and pseudo_per_class(args.self_training_per_class) != 0:
            logger.info("Self-training: embedding %d unlabelled texts", len(inputs.unlabeled))
            pool = inputs.embed(encoder, inputs.unlabeled, show_progress=inputs.show_progress)
        with torch.enable_grad():
            head = fit_head(features, inputs.labels, len(inputs.label_names), args, prior, inputs.seed, pool=pool)
        classifier = SentenceTransformerForSequenceClassification(
            encoder, head.weight, head.bias, inputs.label_names, head=args.head, max_length=inputs.max_length,
            bf16=inputs.bf16)
        info = {"head": head.info}
        if inputs.prior is not None:
            info["prior_source"] = inputs.prior.source
        return FitOutcome(classifier, {"train_runtime": time.perf_counter() - start,
                                       "train_samples": len(inputs.texts)}, info)

    def hyperparameter_names(self) -> list[str]:
        """The flags the card lists: this method's options and the head's."""
        classes = [HeadOptions] + ([self.options] if self.options not in (None, HeadOptions) else [])
        return [f.name for cls in classes for f in dataclasses.fields(cls)]

    def card_parts(self, args: Any, out: Path, task: Any, params: dict[str, Any]) -> CardParts:
        """The description, plus the head's section from the run's ``head_fit.json``."""
        parts = super().card_parts(args, out, task, params)
        path = Path(out) / "head_fit.json"
        if path.is_file():
            parts.sections.update(self.fit_sections(json.loads(path.read_text(encoding="utf-8"))))
        parts.tags += ["sentence-transformers"]
        return parts

    def fit_sections(self, info: dict[str, Any]) -> dict[str, str]:
        """The card's sections on the fit, from its record (``head_fit.json``): the head's."""
        return {"Head": head_section(info)}

    def reload(self, folder: Path) -> tuple[Any, Any] | None:
        """A saved sentence classifier (``classifier_head.json``), else None."""
        if not is_sentence_classifier(folder):
            return None
        classifier = SentenceTransformerForSequenceClassification.load(folder)
        return classifier, classifier.tokenizer
