"""SetFit's flags: the ``setfit`` library's training arguments, prefixed ``setfit_`` so they never clash."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SAMPLING_STRATEGIES", "SetFitOptions", "check_setfit_options"]

#: ``--setfit_sampling_strategy`` choices (the library's): how sentence pairs are drawn from the labelled rows.
SAMPLING_STRATEGIES = ("oversampling", "undersampling", "unique")


@dataclass
class SetFitOptions:
    """Flags of ``--method setfit`` (defaults: the ``setfit`` library's own; the head flags are shared)."""

    setfit_sampling_strategy: str = field(
        default="oversampling",
        metadata={"help": "How the library draws sentence pairs from the labelled rows: oversampling (every unique "
                          "pair, the rarer kind of pair repeated to balance them; the library's default), "
                          "undersampling or unique."})
    setfit_num_iterations: int | None = field(
        default=None,
        metadata={"help": "If set, the pre-1.0 pair sampling: this many positive and negative pairs per labelled "
                          "row (20 in the SetFit paper), instead of --setfit_sampling_strategy."})
    setfit_num_epochs: int = field(default=1, metadata={"help": "Epochs over the sentence pairs (the library's 1)."})
    setfit_epochs_choices: list[int] | None = field(
        default=None,
        metadata={"help": "Choose the body's epochs among these (e.g. 1 2 4) by 3-fold cross-validation on the "
                          "labelled training rows (a body per fold and choice; no validation or test label is read), "
                          "instead of --setfit_num_epochs. Costs folds x the sum of the choices in body epochs."})
    setfit_max_steps: int = field(
        default=-1, metadata={"help": "Cap the contrastive training at this many steps (-1: every pair for "
                                      "--setfit_num_epochs); a shorter uncapped training is left as it is. A cap "
                                      "also caps the pairs drawn, as the library's max_steps does."})
    setfit_batch_size: int = field(default=16, metadata={"help": "Sentence pairs per step (the library's 16)."})
    setfit_body_learning_rate: float = field(
        default=2e-5, metadata={"help": "Learning rate of the contrastive body training (the library's 2e-5)."})
    setfit_label_texts: bool = field(
        default=False,
        metadata={"help": "With --head_init zero_shot: the zero-shot spec's label texts (each template filled with "
                          "each label's description: the texts the prototypes embed) join the contrastive body "
                          "training as one labelled row each, so the body learns the label descriptions too; the "
                          "head still fits on the labelled rows alone."})
    setfit_save_steps: int = field(
        default=500, metadata={"help": "Write a checkpoint-* of the body training every this many steps; "
                                       "--resume_from_checkpoint last continues from the newest one."})


def check_setfit_options(options: SetFitOptions) -> None:
    """Validate the SetFit flags.

    Raises:
        ValueError: A value out of its choices or range; the message names the flag and the fix.
    """
    if options.setfit_sampling_strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"setfit_sampling_strategy={options.setfit_sampling_strategy!r} is not valid; choose one "
                         f"of: {', '.join(SAMPLING_STRATEGIES)}.")
    for name in ("setfit_num_epochs", "setfit_batch_size", "setfit_save_steps"):
        value = getattr(options, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive whole number.")
    choices = options.setfit_epochs_choices
    if choices is not None and (not choices or not all(isinstance(c, int) and c >= 1 for c in choices)):
        raise ValueError(f"setfit_epochs_choices={choices!r} must be positive whole numbers, e.g. "
                         "--setfit_epochs_choices 1 2 4, or unset.")
    iterations = options.setfit_num_iterations
    if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
        raise ValueError(f"setfit_num_iterations={iterations!r} must be a positive whole number, or unset.")
    if options.setfit_max_steps == 0 or options.setfit_max_steps < -1:
        raise ValueError(f"setfit_max_steps={options.setfit_max_steps!r} must be -1 (no cap) or a positive number.")
    if options.setfit_label_texts and getattr(options, "head_init", "zero_shot") != "zero_shot":
        raise ValueError(f"setfit_label_texts=True needs the zero-shot spec's label texts, which come with "
                         f"--head_init zero_shot (head_init={getattr(options, 'head_init', None)!r}); add "
                         "--head_init zero_shot, or drop --setfit_label_texts.")
    if not options.setfit_body_learning_rate > 0:
        raise ValueError(f"setfit_body_learning_rate={options.setfit_body_learning_rate!r} must be > 0 (e.g. 2e-5).")
