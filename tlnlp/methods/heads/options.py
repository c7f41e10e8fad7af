"""The flags of a linear head over sentence embeddings, and the zero-shot prior it may start from.

Shared by every method that trains a head on sentence embeddings (``--method feature_extraction``,
``--method setfit``): which head, where it starts, how strongly it is pulled towards the zero-shot prototypes, and
whether it self-trains on unlabelled texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["HEADS", "HEAD_INITS", "PER_CLASS_GRID", "HeadOptions", "LabelPrior", "check_head_options",
           "prior_strength", "pseudo_per_class"]

#: ``--head`` choices: scikit-learn logistic regression (exact solve), or a torch linear layer trained with AdamW.
HEADS = ("logistic", "linear")
#: ``--head_init`` choices: the usual start (zero / the library's), or the zero-shot label prototypes.
HEAD_INITS = ("random", "zero_shot")
#: What ``--head_prior_strength auto`` chooses from (by cross-validation on the labelled rows).
STRENGTH_GRID = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
#: What ``--self_training_per_class auto`` chooses from: pseudo-labelled texts per class (0: no self-training).
PER_CLASS_GRID = (0, 8, 32, 128)


@dataclass(frozen=True)
class LabelPrior:
    """What the labels say before any labelled row: each label's texts (templates filled with its description).

    Attributes:
        texts: One list of texts per label, in label-id order; the prototype of a label is the mean of their
            unit-length embeddings, as embedding zero-shot scores it.
        temperature: Zero-shot's softmax temperature: the prototype head's weights are prototypes / temperature,
            so the head starts exactly at the zero-shot classifier.
        source: The spec the texts come from, for the card.
    """

    texts: tuple[tuple[str, ...], ...]
    temperature: float = 0.05
    source: str = ""

    def weights(self, embed: object) -> np.ndarray:
        """``labels x dim`` head weights at the prototypes; ``embed(texts) -> unit-length rows``."""
        rows = [np.asarray(embed(list(texts)), dtype=np.float64).mean(axis=0) for texts in self.texts]
        return np.stack(rows) / self.temperature


@dataclass
class HeadOptions:
    """Flags of the head over sentence embeddings (``--method feature_extraction`` and ``--method setfit``)."""

    head: str = field(
        default="logistic",
        metadata={"help": "Head over the sentence embeddings: logistic (scikit-learn logistic regression, the head "
                          "of SetFit and MTEB; exact, seconds) or linear (a torch linear layer trained with AdamW, "
                          "see --head_learning_rate and --head_epochs)."})
    head_init: str = field(
        default="random",
        metadata={"help": "random (the usual start) or zero_shot: start the head at the label-description prototypes "
                          "of embedding zero-shot (--head_zero_shot_spec) and pull it towards them "
                          "(--head_prior_strength)."})
    head_prior_strength: str = field(
        default="auto",
        metadata={"help": "With --head_init zero_shot: the L2 penalty (lambda/2)*||W - W_zero_shot||^2 added to the "
                          "summed cross-entropy (1 is scikit-learn's default strength, centred on the prototypes; "
                          "0 drops the prior: plain logistic regression). auto: chosen by stratified k-fold "
                          "cross-validation on the labelled training rows only (from "
                          f"{', '.join(f'{s:g}' for s in STRENGTH_GRID)}); the choice is in the results and card."})
    head_zero_shot_spec: str = field(
        default="auto",
        metadata={"help": "Templates and label descriptions of the zero-shot prior: a spec name of tlnlp.zeroshot, "
                          "a YAML file, or auto (the dataset's own spec, else the label names)."})
    head_learning_rate: float = field(
        default=1e-2, metadata={"help": "--head linear: AdamW learning rate of the head (SetFit's default)."})
    head_epochs: int = field(default=25, metadata={"help": "--head linear: epochs over the embedded training rows."})
    self_training_texts: str | None = field(
        default=None,
        metadata={"help": "Self-training from unlabelled texts: a text file (one text per line), or rest: the "
                          "training split's texts that --train_samples_per_class / --max_train_samples leave out "
                          "(their labels unread). The fitted head labels them, the texts it is surest of join the "
                          "labelled rows, and the head is fitted again (see --self_training_per_class). Default: "
                          "none, no self-training."})
    self_training_samples: int = field(
        default=3000, metadata={"help": "--self_training_texts: keep at most this many of them (seeded)."})
    self_training_per_class: str = field(
        default="auto",
        metadata={"help": "--self_training_texts: how many pseudo-labelled texts join each class. auto: chosen "
                          f"from {', '.join(str(c) for c in PER_CLASS_GRID)} by stratified k-fold "
                          "cross-validation on the labelled training rows (0: none, when the head labels the pool "
                          "badly); the choice is in the results and card. SetFit with --setfit_epochs_choices "
                          "chooses it with the epochs, on the bodies trained per fold."})


def prior_strength(value: str) -> float | None:
    """``--head_prior_strength`` as a number, or None for ``auto``.

    Raises:
        ValueError: Neither ``auto`` nor a number >= 0.
    """
    text = str(value).strip().lower()
    if text == "auto":
        return None
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise ValueError(f"head_prior_strength={value!r} is not valid; give auto or a number >= 0 (e.g. 1).")
    return number


def pseudo_per_class(value: str | int) -> int | None:
    """``--self_training_per_class`` as a count, or None for ``auto``.

    Raises:
        ValueError: Neither ``auto`` nor a whole number >= 0.
    """
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if not text.isdigit():
        raise ValueError(f"self_training_per_class={value!r} is not valid; give auto or a whole number >= 0 "
                         "(e.g. 32).")
    return int(text)


def check_head_options(options: HeadOptions) -> None:
    """Validate the head flags.

    Raises:
        ValueError: A value out of its choices or range; the message names the flag and the fix.
    """
    for name, value, choices in (("head", options.head, HEADS), ("head_init", options.head_init, HEAD_INITS)):
        if value not in choices:
            raise ValueError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}.")
    prior_strength(options.head_prior_strength)
    if not options.head_learning_rate > 0:
        raise ValueError(f"head_learning_rate={options.head_learning_rate!r} must be > 0 (e.g. 1e-2).")
    if not isinstance(options.head_epochs, int) or options.head_epochs < 1:
        raise ValueError(f"head_epochs={options.head_epochs!r} must be a positive whole number.")
    pseudo_per_class(options.self_training_per_class)
    if not isinstance(options.self_training_samples, int) or options.self_training_samples < 1:
        raise ValueError(f"self_training_samples={options.self_training_samples!r} must be a positive whole number "
                         "(e.g. 3000).")
    texts = options.self_training_texts
    if texts is not None and texts != "rest" and not Path(texts).is_file():
        raise ValueError(f"self_training_texts={texts!r} is neither rest nor a file. Fix: give a text file of "
                         "unlabelled texts, one per line, or rest (the training split's unused texts).")
