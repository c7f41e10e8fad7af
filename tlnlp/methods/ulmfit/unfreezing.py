"""Gradual unfreezing that is safe under several processes, and the per-layer-group learning rates of a run.

"Frozen" is not ``requires_grad=False``: DDP registers its gradient hooks when the model is wrapped, so flipping
``requires_grad`` afterwards is unreliable. Instead every parameter keeps ``requires_grad=True`` (gradients are
all-reduced as usual) and a frozen layer group is an optimizer param group with rate 0 and ``"frozen": True``:

* :class:`FrozenAwareAdamW` skips frozen groups entirely, so their weights stay bit-identical (no update, no
  decoupled weight decay) and no Adam state builds up while frozen; on thawing, the group's moments start from
  zero exactly as if it had just been added to the optimizer.
* :func:`zero_frozen_grads` clears their gradients before clipping, so the global gradient norm (and hence
  clipping) is that of the groups that train.

The rates and the thaw state are pure functions of the global step
(:class:`~tlnlp.methods.ulmfit.schedules.LayerwiseLR`), so a resumed run continues exactly where an uninterrupted
one would be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from transformers import TrainingArguments, get_scheduler

from tlnlp.methods.ulmfit.options import UlmfitSettings
from tlnlp.methods.ulmfit.schedules import FROZEN_KEY, LayerwiseLR, slanted_triangular_lambda, thaw_steps

__all__ = [
    "THAW_ORDER_KEY",
    "FrozenAwareAdamW",
    "build_layerwise_scheduler",
    "layer_rates",
    "zero_frozen_grads",
]

logger = logging.getLogger(__name__)

#: Param-group key set by the ULMFiT param groups: 0 for the top group, 1 for the one below, ...
THAW_ORDER_KEY = "thaw_order"


class FrozenAwareAdamW(torch.optim.AdamW):
    """``torch.optim.AdamW`` that leaves param groups marked ``"frozen": True`` completely alone.

    Without frozen groups it is exactly ``AdamW``.
    """

    def step(self, closure: Callable[[], float] | None = None) -> Any:  # noqa: D102 - AdamW.step minus frozen groups
        groups = self.param_groups
        active = [group for group in groups if not group.get(FROZEN_KEY, False)]
        if len(active) == len(groups):
            return super().step(closure)
        self.param_groups = active
        try:
            return super().step(closure)
        finally:
            self.param_groups = groups


def zero_frozen_grads(optimizer: torch.optim.Optimizer) -> int:
    """Zero (in place) the gradients of every param group marked frozen.

    Args:
        optimizer: The optimizer (or accelerate's wrapper of it).

    Returns:
        How many parameter tensors were zeroed.
    """
    zeroed = 0
    for group in optimizer.param_groups:
        if group.get(FROZEN_KEY, False):
            for param in group["params"]:
                if param.grad is not None:
                    param.grad.zero_()
                    zeroed += 1
    return zeroed


def layer_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The current learning rate of each named layer group (the first param group of each name).

    Args:
        optimizer: An optimizer whose param groups carry ``"name"`` (groups without one are reported by index).

    Returns:
        Name -> rate, in param-group order.
    """
    rates: dict[str, float] = {}
    for index, group in enumerate(optimizer.param_groups):
        rates.setdefault(str(group.get("name", f"group_{index}")), float(group["lr"]))
    return rates


def _group_thaw_steps(optimizer: torch.optim.Optimizer, settings: UlmfitSettings, num_training_steps: int,
                      steps_per_epoch: int | None) -> list[int]:
    orders = [int(group.get(THAW_ORDER_KEY, 0)) for group in optimizer.param_groups]
    steps = thaw_steps(orders, settings.gradual_unfreezing, steps_per_epoch=steps_per_epoch,
                       every_steps=settings.unfreeze_every_steps, total_steps=num_training_steps,
                       fraction=settings.unfreeze_fraction, head_warmup_steps=settings.head_warmup_steps)
    if settings.gradual_unfreezing != "off":
        names = {str(group.get("name", index)): step for index, (group, step)
                 in enumerate(zip(optimizer.param_groups, steps, strict=True))}
        logger.info("Gradual unfreezing (%s) over %d steps, thaw step per layer group: %s",
                    settings.gradual_unfreezing, num_training_steps, names)
    return steps


def build_layerwise_scheduler(optimizer: torch.optim.Optimizer, settings: UlmfitSettings,
                              train_args: TrainingArguments, num_training_steps: int,
                              steps_per_epoch: int | None) -> LRScheduler:
    """The run's scheduler: the slanted triangular or Trainer schedule, times each group's thaw mask.

    Args:
        optimizer: The optimizer; groups may carry ``"thaw_order"`` (from the ULMFiT param groups).
        settings: The resolved ULMFiT options.
        train_args: For ``--lr_scheduler_type``, warm-up and scheduler kwargs.
        num_training_steps: Optimisation steps of the whole run (the Trainer's ``max_steps``; also spaces the
            thaws of ``--gradual_unfreezing fraction``).
        steps_per_epoch: Optimisation steps per epoch (for ``--gradual_unfreezing epoch``).

    Returns:
        A :class:`~tlnlp.methods.ulmfit.schedules.LayerwiseLR`, or the Trainer's own scheduler when no group is ever
        frozen and the schedule is the Trainer's.

    Raises:
        ValueError: Gradual unfreezing with a ``--lr_scheduler_type`` that is not a per-step multiplier
            (e.g. ``reduce_lr_on_plateau``).
    """
    thaws = _group_thaw_steps(optimizer, settings, num_training_steps, steps_per_epoch)
    if settings.lr_schedule == "slanted_triangular":
        if train_args.get_warmup_steps(num_training_steps) > 0:
            logger.warning("The slanted triangular schedule has its own warm-up (cut_frac=%s); --warmup_steps is "
                           "ignored.", settings.cut_frac)
        base = slanted_triangular_lambda(num_training_steps, settings.cut_frac, settings.stlr_ratio)
        return LayerwiseLR(optimizer, base, thaws)
    stock = get_scheduler(train_args.lr_scheduler_type, optimizer=optimizer,
                          num_warmup_steps=train_args.get_warmup_steps(num_training_steps),
                          num_training_steps=num_training_steps,
                          scheduler_specific_kwargs=train_args.lr_scheduler_kwargs)
    if not any(thaws):
        return stock
    if not isinstance(stock, LambdaLR):
        raise ValueError(f"lr_scheduler_type={getattr(train_args.lr_scheduler_type, 'value', '')!r} cannot be "
                         "combined with gradual unfreezing (it is not a per-step rate multiplier). Use "
                         "--lr_schedule slanted_triangular, another --lr_scheduler_type (linear, cosine, "
                         "constant, ...) or --gradual_unfreezing off.")
    return LayerwiseLR(optimizer, list(stock.lr_lambdas), thaws)
