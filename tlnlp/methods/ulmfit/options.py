"""ULMFiT's flags: discriminative learning rates, the LR schedule and gradual unfreezing, and their two presets.

Each option also works with other methods (e.g. discriminative rates with ``--method full`` or ``--method lora``).
Options left unset take the values of the run's preset (:data:`ULMFIT_PRESETS`): ``--ulmfit_preset``, else
``transformer`` for ``--method ulmfit`` and none ("off") for every other method.
:meth:`UlmfitOptions.ulmfit_settings` resolves them.

* ``transformer``: a per-block rate decay of 0.95 (Sun et al. 2019, "How to Fine-Tune BERT for Text
  Classification?"; ELECTRA, Clark et al. 2020, uses 0.8 for base and 0.9 for large models), the slanted
  triangular schedule, and gradual unfreezing spread over the first 10% of the steps, while the slanted
  triangular rate rises, so that every layer group trains from the peak rate on, whatever the number of epochs.
* ``paper``: ULMFiT's values for a 3-layer LSTM (Howard & Ruder 2018): each lower group's rate divided by 2.6,
  the slanted triangular schedule, and one more group thawed each epoch. Over a 6- or 12-block transformer that
  divides the embeddings' rate by hundreds and keeps the lower blocks frozen for most of a short run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "LR_SCHEDULES",
    "ULMFIT_METHODS",
    "ULMFIT_PRESETS",
    "UNFREEZING_MODES",
    "UlmfitOptions",
    "UlmfitPreset",
    "UlmfitSettings",
    "check_ulmfit_options",
]

#: ``--lr_schedule`` choices: the slanted triangular schedule, or the Trainer's ``--lr_scheduler_type``.
LR_SCHEDULES = ("slanted_triangular", "trainer")
#: ``--gradual_unfreezing`` choices: every group thawed by a fraction of the steps, one more group each epoch,
#: one more every N steps, or all at once.
UNFREEZING_MODES = ("fraction", "epoch", "steps", "off")
#: Methods whose options default to the ``transformer`` preset.
ULMFIT_METHODS = frozenset({"ulmfit"})


@dataclass(frozen=True)
class UlmfitPreset:
    """Defaults of the ULMFiT options that a run leaves unset.

    Attributes:
        name: The ``--ulmfit_preset`` value.
        discriminative_factor: Each lower layer group's rate is the rate of the group above divided by this.
        lr_schedule: ``"slanted_triangular"`` or ``"trainer"``.
        gradual_unfreezing: One of :data:`UNFREEZING_MODES`.
        unfreeze_fraction: With ``gradual_unfreezing="fraction"``: every group trains by this fraction of the steps.
        source: Where the values come from.
    """

    name: str
    discriminative_factor: float
    lr_schedule: str
    gradual_unfreezing: str
    unfreeze_fraction: float | None
    source: str


#: ``--ulmfit_preset`` choices by name.
ULMFIT_PRESETS: dict[str, UlmfitPreset] = {
    "transformer": UlmfitPreset(
        name="transformer", discriminative_factor=1 / 0.95, lr_schedule="slanted_triangular",
        gradual_unfreezing="fraction", unfreeze_fraction=0.1,
        source="per-block rate decay 0.95 (Sun et al. 2019; ELECTRA, Clark et al. 2020: 0.8 base, 0.9 large); every "
               "layer group thawed while the slanted triangular rate rises (its cut_frac, 0.1)"),
    "paper": UlmfitPreset(
        name="paper", discriminative_factor=2.6, lr_schedule="slanted_triangular", gradual_unfreezing="epoch",
        unfreeze_fraction=None, source="ULMFiT (Howard & Ruder 2018), for a 3-layer LSTM"),
}
_OFF = UlmfitPreset(name="off", discriminative_factor=1.0, lr_schedule="trainer", gradual_unfreezing="off",
                    unfreeze_fraction=None, source="")


@dataclass(frozen=True)
class UlmfitSettings:
    """The ULMFiT options of a run with every default resolved for its method.

    Attributes:
        discriminative_factor: Each layer group's rate is the rate of the group above divided by this (1: off).
        lr_schedule: ``"slanted_triangular"`` or ``"trainer"`` (``--lr_scheduler_type``).
        cut_frac: Fraction of the steps during which the slanted triangular rate rises.
        stlr_ratio: How much smaller the lowest slanted triangular rate is than the highest.
        gradual_unfreezing: ``"fraction"``, ``"epoch"``, ``"steps"`` or ``"off"``.
        unfreeze_every_steps: Steps between thaws when ``gradual_unfreezing="steps"``.
        unfreeze_fraction: Fraction of the steps by which every group trains when ``gradual_unfreezing="fraction"``.
        head_warmup_steps: Steps during which only the head trains before any other group thaws.
        blocks_per_group: Consecutive transformer blocks that share one rate and thaw together.
        preset: The preset whose values filled the unset options (None: every option off unless set).
    """

    discriminative_factor: float = 1.0
    lr_schedule: str = "trainer"
    cut_frac: float = 0.1
    stlr_ratio: float = 32.0
    gradual_unfreezing: str = "off"
    unfreeze_every_steps: int | None = None
    unfreeze_fraction: float | None = None
    head_warmup_steps: int = 0
    blocks_per_group: int = 1
    preset: str | None = None

    @property
    def layerwise(self) -> bool:
        """Whether the optimizer needs one parameter group per layer group (own rate or own thaw step)."""
        return (self.discriminative_factor != 1.0 or self.gradual_unfreezing != "off" or self.head_warmup_steps > 0)

    @property
    def active(self) -> bool:
        """Whether any ULMFiT option changes training compared with the plain Trainer."""
        return self.layerwise or self.lr_schedule == "slanted_triangular"


def _preset_help() -> str:
    return "; ".join(f"{p.name}: factor {p.discriminative_factor:.4g}, {p.lr_schedule}, gradual_unfreezing "
                     f"{p.gradual_unfreezing}" + (f" {p.unfreeze_fraction}" if p.unfreeze_fraction else "")
                     + f" ({p.source})" for p in ULMFIT_PRESETS.values())


@dataclass
class UlmfitOptions:
    """ULMFiT flags, part of :class:`tlnlp.methods.MethodArgs` (the options of the ``ulmfit`` method)."""

    ulmfit_preset: str | None = field(
        default=None,
        metadata={"help": "Defaults of the ULMFiT flags left unset: transformer (the default for --method ulmfit) "
                          "or paper (ULMFiT's own values; with another --method, turns them on). "
                          f"{_preset_help()}."})
    discriminative_factor: float | None = field(
        default=None,
        metadata={"help": "Discriminative fine-tuning: each lower layer group's learning rate is the rate of the "
                          "group above divided by this factor (the head gets --learning_rate); a per-block rate "
                          "decay d is a factor of 1/d. Default: the preset's (transformer 1/0.95, about 1.053; "
                          "paper 2.6), 1 (off) for other methods."})
    lr_schedule: str | None = field(
        default=None,
        metadata={"help": "slanted_triangular (ULMFiT's schedule, see --cut_frac and --stlr_ratio) or trainer "
                          "(the usual --lr_scheduler_type). Default slanted_triangular with a preset (--method "
                          "ulmfit), trainer otherwise."})
    cut_frac: float = field(
        default=0.1, metadata={"help": "Slanted triangular: fraction of the steps during which the rate rises."})
    stlr_ratio: float = field(
        default=32.0, metadata={"help": "Slanted triangular: the lowest rate is the highest divided by this."})
    gradual_unfreezing: str | None = field(
        default=None,
        metadata={"help": "Thaw layer groups one at a time from the head down: fraction (evenly spaced so that "
                          "every group trains by --unfreeze_fraction of the run's steps), epoch (one more group "
                          "each epoch), steps (one more every --unfreeze_every_steps) or off. Default: the "
                          "preset's (transformer: fraction; paper: epoch), off for other methods. A frozen group "
                          "keeps its weights bit-identical (rate 0, no optimizer step), also under several "
                          "processes."})
    unfreeze_fraction: float | None = field(
        default=None,
        metadata={"help": "With --gradual_unfreezing fraction: every layer group trains by this fraction of the "
                          "run's optimisation steps (default 0.1, while the slanted triangular rate rises); "
                          "setting it alone implies --gradual_unfreezing fraction."})
    unfreeze_every_steps: int | None = field(
        default=None, metadata={"help": "With --gradual_unfreezing steps: optimisation steps between thaws "
                                        "(setting it alone implies --gradual_unfreezing steps)."})
    head_warmup_steps: int = field(
        default=0, metadata={"help": "Train only the head for this many steps before any other group thaws "
                                     "(useful when the head is new, e.g. a masked-LM head)."})
    blocks_per_group: int = field(
        default=1, metadata={"help": "Consecutive transformer blocks per layer group (one rate, thawed together)."})

    def ulmfit_settings(self) -> UlmfitSettings:
        """The ULMFiT options with the preset's defaults filled in.

        Returns:
            The resolved settings.
        """
        name = self.ulmfit_preset or ("transformer" if getattr(self, "method", None) in ULMFIT_METHODS else None)
        preset = ULMFIT_PRESETS[name] if name else _OFF
        unfreezing = self.gradual_unfreezing
        if unfreezing is None and self.unfreeze_every_steps:
            unfreezing = "steps"
        elif unfreezing is None and self.unfreeze_fraction is not None:
            unfreezing = "fraction"
        unfreezing = unfreezing or preset.gradual_unfreezing
        fraction = self.unfreeze_fraction
        if fraction is None and unfreezing == "fraction":
            fraction = ULMFIT_PRESETS["transformer"].unfreeze_fraction
        factor = self.discriminative_factor
        return UlmfitSettings(
            discriminative_factor=float(factor if factor is not None else preset.discriminative_factor),
            lr_schedule=self.lr_schedule or preset.lr_schedule,
            cut_frac=float(self.cut_frac),
            stlr_ratio=float(self.stlr_ratio),
            gradual_unfreezing=unfreezing,
            unfreeze_every_steps=self.unfreeze_every_steps,
            unfreeze_fraction=None if fraction is None else float(fraction),
            head_warmup_steps=int(self.head_warmup_steps),
            blocks_per_group=int(self.blocks_per_group),
            preset=name,
        )


def _check_choices(options: UlmfitOptions) -> None:
    for name, value, choices in (("ulmfit_preset", options.ulmfit_preset, tuple(ULMFIT_PRESETS)),
                                 ("lr_schedule", options.lr_schedule, LR_SCHEDULES),
                                 ("gradual_unfreezing", options.gradual_unfreezing, UNFREEZING_MODES)):
        if value is not None and value not in choices:
            raise ValueError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}.")


def _check_unfreezing(options: UlmfitOptions) -> None:
    mode, every, fraction = options.gradual_unfreezing, options.unfreeze_every_steps, options.unfreeze_fraction
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"unfreeze_fraction={fraction!r} must be in (0, 1]: the fraction of the run's steps by "
                         "which every layer group trains (the transformer preset uses 0.1).")
    if mode == "steps" and not every:
        raise ValueError("gradual_unfreezing='steps' needs --unfreeze_every_steps N (steps between thaws).")
    if every and fraction is not None:
        raise ValueError(f"unfreeze_every_steps={every} and unfreeze_fraction={fraction} both space the thaws; "
                         "give only one (with --gradual_unfreezing steps or fraction).")
    if every and mode in ("fraction", "epoch", "off"):
        raise ValueError(f"unfreeze_every_steps={every} only applies to --gradual_unfreezing steps, but "
                         f"gradual_unfreezing={mode!r}. Drop one of the two.")
    if fraction is not None and mode in ("steps", "epoch", "off"):
        raise ValueError(f"unfreeze_fraction={fraction} only applies to --gradual_unfreezing fraction, but "
                         f"gradual_unfreezing={mode!r}. Drop one of the two.")


def check_ulmfit_options(options: UlmfitOptions) -> None:
    """Validate the ULMFiT options of a ``MethodArgs``.

    Raises:
        ValueError: An option out of range or two options that contradict each other; the message names them.
    """
    if options.discriminative_factor is not None and not options.discriminative_factor > 0:
        raise ValueError(f"discriminative_factor={options.discriminative_factor!r} must be > 0 (the paper uses "
                         "2.6 for an LSTM, transformer recipes 1/0.95 to 1/0.8; 1 gives every layer group the "
                         "same rate).")
    _check_choices(options)
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
    _check_unfreezing(options)
