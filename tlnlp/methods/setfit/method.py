"""SetFit through the ``setfit`` library: its contrastive body training, then tlnlp's head on the new embeddings.

The body phase is the library's own (``setfit.Trainer.train_embeddings``: pairs of labelled rows, cosine-similarity
loss, its sampling and defaults). The head phase fits :func:`tlnlp.methods.heads.fit_head` on the trained body's
embeddings: with the default ``--head logistic`` that is the library's head (scikit-learn logistic regression on
the embeddings), and ``--head_init zero_shot`` anchors it at the zero-shot prototypes embedded by the trained body.
The result saves as safetensors (the library pickles its scikit-learn head; tlnlp does not).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.methods.base import register_method
from tlnlp.methods.heads.method import EmbeddingMethod, FitInputs, FitOutcome
from tlnlp.methods.setfit.epochs import choose_body_epochs
from tlnlp.methods.setfit.options import SetFitOptions, check_setfit_options
from tlnlp.models.cpu_dropout import fast_cpu_dropout_wanted, use_fast_cpu_dropout
from tlnlp.models.sentence_classifier import cut_to

__all__ = ["SetFit", "with_label_texts"]

logger = logging.getLogger(__name__)


def pair_count(labels: list[int], sampling_strategy: str, num_iterations: int | None) -> int:
    """How many sentence pairs the library draws from rows with ``labels`` (counted, not built).

    Same-label pairs include a row with itself, as the library's sampler does; ``oversampling`` repeats the rarer
    kind of pair up to the commoner's count, ``undersampling`` cuts the commoner down, ``unique`` keeps every pair
    once; ``num_iterations`` draws that many positive and negative pairs per row instead.
    """
    if num_iterations is not None:
        return 2 * num_iterations * len(labels)
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    same = int(sum(n * (n + 1) // 2 for n in counts))
    different = int((counts.sum() ** 2 - (counts**2).sum()) // 2)
    if sampling_strategy == "unique":
        return same + different
    return 2 * (max(same, different) if sampling_strategy == "oversampling" else min(same, different))


def capped_steps(labels: list[int], args: Any) -> int:
    """``--setfit_max_steps`` as the library's ``max_steps``: -1 when the uncapped training is no longer.

    The library's ``max_steps`` is a step count, not a cap (a run of 120 steps per epoch given 150 trains 150);
    here it only ever shortens the training: the steps of the library's own pairs and epochs are counted first.
    """
    cap = int(args.setfit_max_steps)
    if cap < 0:
        return -1
    pairs = pair_count(labels, args.setfit_sampling_strategy, args.setfit_num_iterations)
    uncapped = math.ceil(pairs / args.setfit_batch_size) * args.setfit_num_epochs
    return cap if cap < uncapped else -1


def _training_args(args: Any, inputs: FitInputs, out: str) -> Any:
    """The library's ``TrainingArguments`` from the ``setfit_*`` flags (checkpoints under ``out``)."""
    from setfit import TrainingArguments  # deferred: the setfit library loads only for --method setfit

    return TrainingArguments(
        output_dir=out, batch_size=args.setfit_batch_size, num_epochs=args.setfit_num_epochs,
        max_steps=capped_steps([int(y) for y in inputs.labels], args),
        sampling_strategy=args.setfit_sampling_strategy,
        num_iterations=args.setfit_num_iterations, body_learning_rate=args.setfit_body_learning_rate,
        seed=inputs.seed, max_length=inputs.max_length, show_progress_bar=inputs.show_progress, report_to="none",
        save_strategy="steps", save_steps=args.setfit_save_steps, save_total_limit=1, logging_strategy="no")


def with_label_texts(inputs: FitInputs, args: Any) -> tuple[FitInputs, int]:
    """The body's training rows: the labelled rows, plus with ``--setfit_label_texts`` each label text of the prior.

    Returns the rows and how many label texts joined them (0 without the flag or without a prior).
    """
    if not getattr(args, "setfit_label_texts", False) or inputs.prior is None:
        return inputs, 0
    texts = [text for group in inputs.prior.texts for text in group]
    labels = [label for label, group in enumerate(inputs.prior.texts) for _ in group]
    rows = dataclasses.replace(inputs, texts=[*inputs.texts, *texts],
                               labels=np.concatenate([np.asarray(inputs.labels, dtype=np.int64),
                                                      np.asarray(labels, dtype=np.int64)]))
    return rows, len(texts)


def _train_body(encoder: Any, inputs: FitInputs, args: Any) -> dict[str, Any]:
    """The library's contrastive phase on ``encoder`` (in place); resumes from ``inputs.resume_from``."""
    from setfit import SetFitModel, Trainer  # deferred: as in _training_args

    inputs, added = with_label_texts(inputs, args)
    out = str(inputs.output_dir) if inputs.output_dir is not None else "setfit_checkpoints"
    model = SetFitModel(model_body=encoder, labels=list(inputs.label_names))
    if fast_cpu_dropout_wanted(inputs.training, encoder.device):
        use_fast_cpu_dropout(encoder)  # as every Trainer run of tlnlp on a CPU (--cpu_dropout)
    setfit_args = _training_args(args, inputs, out)
    trainer = Trainer(model=model, args=setfit_args)
    resume = inputs.resume_from
    if resume is not None:  # the library's train() takes no checkpoint; its sentence-transformers trainer does
        logger.info("SetFit: resuming the body training from %s", resume)
        trainer.st_trainer.train = functools.partial(trainer.st_trainer.train, resume_from_checkpoint=resume)
    with cut_to(encoder, inputs.max_length):  # the library cuts only the head's texts; the body's are cut here
        trainer.train_embeddings(x_train=list(inputs.texts), y_train=[int(y) for y in inputs.labels],
                                 args=setfit_args)
    state = trainer.st_trainer.state
    return {"body_steps": int(state.global_step), "body_pairs": int(len(trainer.st_trainer.train_dataset)),
            "resumed_from": Path(resume).name if resume else None, "label_text_rows": added}


def body_section(body: dict[str, Any]) -> str:
    """The card's lines on the contrastive body training: steps, pairs, epochs and how the epochs were chosen."""
    lines = [f"- Contrastive training: {body.get('body_steps')} steps over {body.get('body_pairs')} sentence pairs, "
             f"{body.get('epochs', 1)} epoch(s)."]
    if body.get("label_text_rows"):
        lines.append(f"- The zero-shot spec's {body['label_text_rows']} label texts joined the labelled rows in the "
                     "contrastive training (`--setfit_label_texts`); the head fitted on the labelled rows alone.")
    search = body.get("epochs_search")
    if search and search.get("folds"):
        scores = ", ".join(f"{e}: {a:.3f}" for e, a in search["cv_accuracy"].items())
        lines.append(f"- Epochs chosen among {search['choices']} by {search['folds']}-fold cross-validation on the "
                     f"labelled training rows only (out-of-fold accuracy {scores}).")
    return "\n".join(lines)


@register_method
class SetFit(EmbeddingMethod):
    """``--method setfit``: SetFit (Tunstall et al. 2022) with the ``setfit`` library, and a safetensors head."""

    name = "setfit"
    options = SetFitOptions
    description = ("SetFit (Tunstall et al., 2022; the setfit library): the sentence-transformer body is fine-tuned "
                   "contrastively on pairs of labelled texts (same label: similar; different labels: dissimilar), "
                   "then a linear {head} is fitted on the trained body's sentence embeddings.")

    def validate(self, args: Any) -> None:
        """Check the ``setfit_*`` flags."""
        check_setfit_options(args)

    def train_body(self, encoder: Any, inputs: FitInputs, args: Any) -> dict[str, Any]:
        """The library's contrastive training of ``encoder`` (in place): steps, pairs and any resumed checkpoint."""
        return _train_body(encoder, inputs, args)

    def fit(self, encoder: Any, inputs: FitInputs, args: Any) -> FitOutcome:
        """Train the body contrastively (the library), then fit the head on its embeddings."""
        start = time.perf_counter()
        search = None
        if args.setfit_epochs_choices:
            chosen, search = choose_body_epochs(encoder, inputs, args, self.train_body)
            args = dataclasses.replace(args, setfit_num_epochs=chosen)
            if "self_training_per_class" in search:  # chosen on the fold bodies, with the epochs
                args = dataclasses.replace(args, self_training_per_class=str(search["self_training_per_class"]))
        body = self.train_body(encoder, inputs, args)
        body_seconds = time.perf_counter() - start
        outcome = self.fit_head_on(encoder, inputs, args)
        outcome.metrics["train_runtime"] = time.perf_counter() - start
        outcome.metrics["train_body_runtime"] = body_seconds
        outcome.metrics["train_body_steps"] = body["body_steps"]
        outcome.metrics["train_body_epochs"] = args.setfit_num_epochs
        outcome.info["body"] = {**body, "epochs": args.setfit_num_epochs}
        if search is not None:
            outcome.info["body"]["epochs_search"] = search
            if "self_training_search" in search:  # a count of 0 left the texts unembedded: record it here
                head = outcome.info["head"]
                head.setdefault("self_training", {"per_class": 0, "pool_rows": len(inputs.unlabeled or []),
                                                  "pseudo_rows": 0})
                head["self_training_search"] = search["self_training_search"]
        return outcome

    def card_parts(self, args: Any, out: Path, task: Any, params: dict[str, Any]) -> Any:
        """The SetFit description and head section, tagged for the setfit library."""
        parts = super().card_parts(args, out, task, params)
        parts.tags += ["setfit"]
        return parts

    def fit_sections(self, info: dict[str, Any]) -> dict[str, str]:
        """The head's section, and the body training's."""
        body = info.get("body")
        return super().fit_sections(info) | ({"SetFit body": body_section(body)} if body else {})
