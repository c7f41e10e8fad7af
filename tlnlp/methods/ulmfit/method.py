"""ULMFiT (Howard & Ruder 2018) as a method: discriminative rates, the slanted triangular schedule, gradual unfreezing.

``--method ulmfit`` fine-tunes every weight with the ``transformer`` preset
(:data:`~tlnlp.methods.ulmfit.options.ULMFIT_PRESETS`): each lower layer group's rate is 0.95 times the rate of the
group above (the per-block decay of transformer fine-tuning recipes), the slanted triangular schedule, and gradual
unfreezing from the head down, every group training by the first 10% of the steps. ``--ulmfit_preset paper``
gives the paper's values (factor 2.6, one more group each epoch). Each part is also available to every other
method through the ULMFiT flags (:class:`~tlnlp.methods.ulmfit.options.UlmfitOptions`), so this method is active
whenever its options ask for something, whatever ``--method`` says: its hooks then regroup the trainable
parameters per layer group, build the scheduler, keep frozen groups untouched and log every group's rate.

A "frozen" group keeps ``requires_grad=True`` and gets rate 0 (see :mod:`tlnlp.methods.ulmfit.unfreezing`).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback

from tlnlp.methods.base import Method, ParamGroup, register_method
from tlnlp.methods.optim import build_optimizer
from tlnlp.methods.ulmfit.groups import layerwise_param_groups
from tlnlp.methods.ulmfit.options import UlmfitOptions, check_ulmfit_options
from tlnlp.methods.ulmfit.plot import LayerRatesCallback
from tlnlp.methods.ulmfit.unfreezing import (
    FrozenAwareAdamW,
    build_layerwise_scheduler,
    layer_rates,
    zero_frozen_grads,
)

__all__ = ["Ulmfit"]


@register_method
class Ulmfit(Method):
    """``--method ulmfit``, and the ULMFiT options of any method."""

    name = "ulmfit"
    options = UlmfitOptions
    description = ("ULMFiT (Howard & Ruder 2018): every weight is fine-tuned with discriminative learning rates (each "
                   "lower layer group's rate a constant fraction of the rate above), a slanted triangular schedule "
                   "and gradual unfreezing from the head down; see learning_rates.png for each group's rate and thaw "
                   "step.")

    def validate(self, args: Any) -> None:
        """Check the ULMFiT options (ranges, and options that contradict each other)."""
        check_ulmfit_options(args)

    def is_active(self, args: Any) -> bool:
        """Whether the ULMFiT options change training (a preset's defaults do, e.g. for ``--method ulmfit``)."""
        return args.ulmfit_settings().active

    def prepare(self, model: torch.nn.Module, args: Any) -> torch.nn.Module:
        """Every weight trains (frozen groups keep ``requires_grad=True`` and get rate 0)."""
        for param in model.parameters():
            param.requires_grad_(True)
        return model

    def param_groups(self, model: torch.nn.Module, args: Any,
                     groups: list[ParamGroup] | None) -> list[ParamGroup] | None:
        """One group per layer group (rate scale, thaw order) when rates or thaws differ between groups."""
        settings = args.ulmfit_settings()
        return layerwise_param_groups(model, settings, groups) if settings.layerwise else groups

    def callbacks(self, model: torch.nn.Module, args: Any) -> list[TrainerCallback]:
        """Plot each group's rate (``learning_rates.png``) at the end of training."""
        if not self.is_active(args):
            return []
        return [LayerRatesCallback(title=f"Learning rate per layer group ({args.method})")]

    def create_optimizer(self, train_args: Any, args: Any, groups: list[ParamGroup] | None) -> Any | None:
        """An AdamW that skips frozen groups entirely, over the layer-wise groups.

        Raises:
            ValueError: Layer-wise options without the layer-wise groups (``build_trainer`` was not given what
                ``apply_method`` returned).
        """
        if not args.ulmfit_settings().layerwise:
            return None
        if groups is None:
            raise ValueError("Discriminative rates, gradual unfreezing and head warm-up need the layer-wise param "
                             "groups: pass what tlnlp.methods.apply_method returned to build_trainer.")
        return build_optimizer(train_args, groups, FrozenAwareAdamW)

    def create_scheduler(self, trainer: Any, args: Any, optimizer: Any, num_training_steps: int) -> Any | None:
        """The slanted triangular (or Trainer) schedule times each group's thaw mask."""
        if not self.is_active(args):
            return None
        return build_layerwise_scheduler(optimizer, args.ulmfit_settings(), trainer.args, num_training_steps,
                                         trainer.steps_per_epoch)

    def before_clip(self, trainer: Any, args: Any) -> None:
        """Zero the frozen groups' gradients: the norm (and clipping) is that of the groups that train."""
        zero_frozen_grads(trainer.optimizer)

    def learning_rate(self, trainer: Any, args: Any) -> float | None:
        """The top group's rate; every group's rate is kept for :meth:`log_values` (read after the step)."""
        if not self.is_active(args):
            return None
        rates = layer_rates(trainer.optimizer)
        trainer.method_state[self.name] = rates
        return max(rates.values())

    def log_values(self, trainer: Any, args: Any, logs: dict[str, float]) -> None:
        """``lr/<group>``: each layer group's rate at the logged step (TensorBoard shows them)."""
        rates = trainer.method_state.get(self.name)
        if rates is not None and "learning_rate" in logs and args.ulmfit_settings().layerwise:
            logs.update({f"lr/{name}": rate for name, rate in rates.items()})
