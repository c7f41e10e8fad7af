"""ULMFiT's flags: discriminative learning rates, the LR schedule and gradual unfreezing.

Each option also works with other methods (e.g. discriminative rates with ``--method full`` or ``--method lora``).
Options left unset take the method's defaults: the ULMFiT paper's values (Howard & Ruder 2018) for
``--method ulmfit``, "off" for every other method. :meth:`UlmfitOptions.ulmfit_settings` resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "LR_SCHEDULES",
    "ULMFIT_METHODS",
    "UNFREEZING_MODES",
    "UlmfitOptions",
    "UlmfitSettings",
    "check_ulmfit_options",
]

#: ``--lr_schedule`` choices: the slanted triangular schedule, or the Trainer's ``--lr_scheduler_type``.
LR_SCHEDULES = ("slanted_triangular", "trainer")
#: ``--gradual_unfreezing`` choices: one more layer group each epoch, every N steps, or all at once.
UNFREEZING_MODES = ("epoch", "steps", "off")
#: Methods whose defaults are the paper's (factor 2.6, slanted triangular, one group per epoch).
ULMFIT_METHODS = frozenset({"ulmfit"})


@dataclass(frozen=True)
class UlmfitSettings:
    """The ULMFiT options of a run with every default resolved for its method.

    Attributes:
        discriminative_factor: Each layer group's rate is the rate of the group above divided by this (1: off).
        lr_schedule: ``"slanted_triangular"`` or ``"trainer"`` (``--lr_scheduler_type``).
        cut_frac: Fraction of the steps during which the slanted triangular rate rises.
        stlr_ratio: How much smaller the lowest slanted triangular rate is than the highest.
        gradual_unfreezing: ``"epoch"``, ``"steps"`` or ``"off"``.
        unfreeze_every_steps: Steps between thaws when ``gradual_unfreezing="steps"``.
        head_warmup_steps: Steps during which only the head trains before any other group thaws.
        blocks_per_group: Consecutive transformer blocks that share one rate and thaw together.
    """

    discriminative_factor: float = 1.0
    lr_schedule: str = "trainer"
    cut_frac: float = 0.1
    stlr_ratio: float = 32.0
    gradual_unfreezing: str = "off"
    unfreeze_every_steps: int | None = None
    head_warmup_steps: int = 0
    blocks_per_group: int = 1

    @property
    def layerwise(self) -> bool:
        """Whether the optimizer needs one parameter group per layer group (own rate or own thaw step)."""
        return (self.discriminative_factor != 1.0 or self.gradual_unfreezing != "off" or self.head_warmup_steps > 0)

    @property
    def active(self) -> bool:
        """Whether any ULMFiT option changes training compared with the plain Trainer."""
        return self.layerwise or self.lr_schedule == "slanted_triangular"


@dataclass
class UlmfitOptions:
    """ULMFiT flags, part of :class:`tlnlp.methods.MethodArgs` (the options of the ``ulmfit`` method)."""

    discriminative_factor: float | None = field(
        default=None,
        metadata={"help": "Discriminative fine-tuning: each lower layer group's learning rate is the rate of the "
                          "group above divided by this factor (the head gets --learning_rate). Default 2.6 for "
                          "--method ulmfit, 1 (off) for other methods."})
    lr_schedule: str | None = field(
        default=None,
        metadata={"help": "slanted_triangular (ULMFiT's schedule, see --cut_frac and --stlr_ratio) or trainer "
                          "(the usual --lr_scheduler_type). Default slanted_triangular for --method ulmfit, "
                          "trainer otherwise."})
    cut_frac: float = field(
        default=0.1, metadata={"help": "Slanted triangular: fraction of the steps during which the rate rises."})
    stlr_ratio: float = field(
        default=32.0, metadata={"help": "Slanted triangular: the lowest rate is the highest divided by this."})
    gradual_unfreezing: str | None = field(
        default=None,
        metadata={"help": "epoch (the head first, one more layer group from the top each epoch), steps (one more "
                          "group every --unfreeze_every_steps) or off. Default epoch for --method ulmfit, off "
                          "otherwise. A frozen group keeps its weights bit-identical (rate 0, no optimizer "
                          "step), also under several processes."})
    unfreeze_every_steps: int | None = field(
        default=None, metadata={"help": "With --gradual_unfreezing steps: optimisation steps between thaws "
                                        "(setting it alone implies --gradual_unfreezing steps)."})
    head_warmup_steps: int = field(
        default=0, metadata={"help": "Train only the head for this many steps before any other group thaws "
                                     "(useful when the head is new, e.g. a masked-LM head)."})
    blocks_per_group: int = field(
        default=1, metadata={"help": "Consecutive transformer blocks per layer group (one rate, thawed together)."})

    def ulmfit_settings(self) -> UlmfitSettings:
        """The ULMFiT options with the method's defaults filled in.

        Returns:
            The resolved settings.
        """
        paper = getattr(self, "method", None) in ULMFIT_METHODS
        unfreezing = self.gradual_unfreezing
        if unfreezing is None:
            unfreezing = "steps" if self.unfreeze_every_steps else ("epoch" if paper else "off")
        factor = self.discriminative_factor
        return UlmfitSettings(
            discriminative_factor=float(factor if factor is not None else (2.6 if paper else 1.0)),
            lr_schedule=self.lr_schedule or ("slanted_triangular" if paper else "trainer"),
            cut_frac=float(self.cut_frac),
            stlr_ratio=float(self.stlr_ratio),
            gradual_unfreezing=unfreezing,
            unfreeze_every_steps=self.unfreeze_every_steps,
            head_warmup_steps=int(self.head_warmup_steps),
            blocks_per_group=int(self.blocks_per_group),
        )


def check_ulmfit_options(options: UlmfitOptions) -> None:
    """Validate the ULMFiT options of a ``MethodArgs``.

    Raises:
        ValueError: An option out of range or two options that contradict each other; the message names them.
    """
    if options.discriminative_factor is not None and not options.discriminative_factor > 0:
        raise ValueError(f"discriminative_factor={options.discriminative_factor!r} must be > 0 (the paper uses "
                         "2.6; 1 gives every layer group the same rate).")
    for name, value, choices in (("lr_schedule", options.lr_schedule, LR_SCHEDULES),
                                 ("gradual_unfreezing", options.gradual_unfreezing, UNFREEZING_MODES)):
        if value is not None and value not in choices:
            raise ValueError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}.")
    if not 0 < options.cut_frac < 1:
        raise ValueError(f"cut_frac={options.cut_frac!r} must be in (0, 1); the paper uses 0.1.")
    if not options.stlr_ratio >= 1:
        raise ValueError(f"stlr_ratio={options.stlr_ratio!r} must be >= 1; the paper uses 32.")
    for name in ("unfreeze_every_steps", "blocks_per_group"):
        value = getattr(options, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}={value!r} must be a positive whole number.")
    if options.head_warmup_steps < 0:
        raise ValueError(f"head_warmup_steps={options.head_warmup_steps!r} must be >= 0.")
    if options.gradual_unfreezing == "steps" and not options.unfreeze_every_steps:
        raise ValueError("gradual_unfreezing='steps' needs --unfreeze_every_steps N (steps between thaws).")
    if options.unfreeze_every_steps and options.gradual_unfreezing in ("epoch", "off"):
        raise ValueError(f"unfreeze_every_steps={options.unfreeze_every_steps} only applies to "
                         f"--gradual_unfreezing steps, but gradual_unfreezing={options.gradual_unfreezing!r}. "
                         "Drop one of the two.")
