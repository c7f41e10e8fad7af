"""Learning-rate schedules of ULMFiT (Howard & Ruder 2018) as pure functions of the optimisation step.

* :func:`slanted_triangular`: a short linear rise to the peak rate, then a long linear decay.
* :func:`discriminative_scales`: each lower layer group's rate is the rate of the group above divided by a factor.
* :func:`thaw_steps`: gradual unfreezing, the step at which each layer group starts to train.
* :class:`LayerwiseLR`: one ``LambdaLR`` that multiplies any of these per group and marks frozen groups.

Everything depends on the global step only, so a run resumed from a checkpoint continues with the same rates
and the same thaw state as an uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = [
    "FROZEN_KEY",
    "LayerwiseLR",
    "discriminative_scales",
    "slanted_triangular",
    "slanted_triangular_lambda",
    "thaw_steps",
]

#: Optimizer param-group key: True while the group is frozen (rate 0 and no optimizer step at all).
FROZEN_KEY = "frozen"


def slanted_triangular(step: int, total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0) -> float:
    """The slanted triangular multiplier of the peak rate at ``step`` (paper, equation 3).

    ``cut = floor(T * cut_frac)``; ``p = t / cut`` while ``t < cut``, else
    ``1 - (t - cut) / (cut * (1 / cut_frac - 1))``; the multiplier is ``(1 + p * (ratio - 1)) / ratio``. It
    starts at ``1 / ratio``, reaches 1 at ``t = cut`` and falls back towards ``1 / ratio`` at ``t = T``. The decay
    divides by ``T - cut``, which is the paper's ``cut * (1 / cut_frac - 1)`` whenever ``T * cut_frac`` is whole;
    otherwise the paper's denominator is shorter than the run and the rate would sit at its floor for the last
    steps. When ``T`` is so small that ``cut`` is 0, the rate starts at the peak and decays over the ``T`` steps.

    Args:
        step: Optimisation step ``t`` (0-based).
        total_steps: Number of optimisation steps ``T`` of the run.
        cut_frac: Fraction of the steps during which the rate rises (paper: 0.1).
        ratio: How much smaller the lowest rate is than the peak (paper: 32).

    Returns:
        The multiplier in ``[1 / ratio, 1]``.
    """
    cut = math.floor(total_steps * cut_frac)
    if cut > 0 and step < cut:
        p = step / cut
    elif cut > 0:
        p = 1.0 - (step - cut) / max(total_steps - cut, 1)
    else:
        p = 1.0 - step / max(total_steps, 1)
    p = min(max(p, 0.0), 1.0)
    return (1.0 + p * (ratio - 1.0)) / ratio


def slanted_triangular_lambda(total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0) -> Callable[[int], float]:
    """:func:`slanted_triangular` as a ``LambdaLR`` function of the step.

    Args:
        total_steps: Number of optimisation steps of the run.
        cut_frac: Fraction of the steps during which the rate rises.
        ratio: Peak rate / lowest rate.

    Returns:
        ``f(step) -> multiplier``.
    """

    def multiplier(step: int) -> float:
        return slanted_triangular(step, total_steps, cut_frac, ratio)

    return multiplier


def discriminative_scales(num_groups: int, factor: float) -> list[float]:
    """Rate multipliers of layer groups ordered from the input to the output.

    The last (top) group gets 1; each group below gets the multiplier of the group above divided by
    ``factor``: group ``i`` of ``n`` gets ``factor ** -(n - 1 - i)``.

    Args:
        num_groups: Number of layer groups.
        factor: The discriminative factor (paper: 2.6; 1 gives every group the base rate).

    Returns:
        One multiplier per group, input first.
    """
    return [factor ** -(num_groups - 1 - i) for i in range(num_groups)]


def _thaw_period(mode: str, steps_per_epoch: int | None, every_steps: int | None, total_steps: int | None,
                 fraction: float | None, last_order: int) -> float:
    """Steps between two thaws for ``mode`` (0 for ``"off"``), checked."""
    if mode == "off":
        return 0.0
    if mode == "fraction":
        if fraction is None or not 0 < fraction <= 1 or total_steps is None or total_steps < 1:
            raise ValueError(f"gradual_unfreezing='fraction' needs a fraction in (0, 1] (--unfreeze_fraction) and "
                             f"the run's steps; got fraction={fraction!r}, total_steps={total_steps!r}.")
        return fraction * total_steps / max(last_order, 1)
    if mode not in ("epoch", "steps"):
        raise ValueError(f"gradual_unfreezing={mode!r} is not valid; choose one of: fraction, epoch, steps, off.")
    period = steps_per_epoch if mode == "epoch" else every_steps
    if period is None or period < 1:
        raise ValueError(f"gradual_unfreezing={mode!r} needs a positive period (steps per epoch or "
                         f"--unfreeze_every_steps); got {period!r}.")
    return float(period)


def thaw_steps(thaw_orders: Sequence[int], mode: str, *, steps_per_epoch: int | None = None,
               every_steps: int | None = None, total_steps: int | None = None, fraction: float | None = None,
               head_warmup_steps: int = 0) -> list[int]:
    """The optimisation step at which each group starts to train (gradual unfreezing).

    A group's thaw order is 0 for the top trained group (the head), 1 for the group below, and so on up to the
    last order ``K``. With ``mode="fraction"`` order ``k`` thaws at ``floor(k * fraction * total_steps / K)``,
    so the thaws are evenly spaced and every group trains from ``fraction`` of the run on, whatever the number
    of epochs; with ``mode="epoch"`` at the first step of epoch ``k``; with ``mode="steps"`` at step
    ``k * every_steps``; with ``"off"`` every group trains from the start. ``head_warmup_steps`` holds every
    group but order 0 until that step (whichever comes later).

    Args:
        thaw_orders: Thaw order of each group.
        mode: ``"fraction"``, ``"epoch"``, ``"steps"`` or ``"off"``.
        steps_per_epoch: Optimisation steps per epoch (needed for ``"epoch"``).
        every_steps: Steps between thaws (needed for ``"steps"``).
        total_steps: Optimisation steps of the run (needed for ``"fraction"``).
        fraction: Fraction of ``total_steps`` by which every group trains (needed for ``"fraction"``).
        head_warmup_steps: Steps during which only order 0 trains.

    Returns:
        One step per group.

    Raises:
        ValueError: What the mode needs is missing or out of range, or the mode is unknown.
    """
    last_order = max(thaw_orders, default=0)
    period = _thaw_period(mode, steps_per_epoch, every_steps, total_steps, fraction, last_order)
    steps = []
    for order in thaw_orders:
        start = math.floor(order * period + 1e-9)
        steps.append(max(start, head_warmup_steps) if order > 0 else 0)
    return steps


def _masked(base: Callable[[int], float], thaw_at: int) -> Callable[[int], float]:
    def multiplier(step: int) -> float:
        return base(step) if step >= thaw_at else 0.0

    return multiplier


class LayerwiseLR(LambdaLR):
    """A ``LambdaLR`` whose per-group multiplier is a base schedule times the group's thaw mask.

    Before its thaw step a group's rate is 0 and its ``"frozen"`` key is True, which
    :class:`~tlnlp.methods.ulmfit.unfreezing.FrozenAwareAdamW` reads to skip the group entirely (no update, no
    weight decay, no Adam state), so frozen weights stay bit-identical on every process; when it thaws, its
    Adam moments start from zero as for a freshly added group. The state dict holds the step and the thaw steps
    only (plain data), so it reloads with ``torch.load(weights_only=True)``.

    Args:
        optimizer: The optimizer; each param group's ``lr`` is its peak (base) rate.
        base_lambdas: One schedule function per param group (or one for all).
        group_thaw_steps: The thaw step of each param group.
        last_epoch: As in ``LambdaLR``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 base_lambdas: Callable[[int], float] | Sequence[Callable[[int], float]],
                 group_thaw_steps: Sequence[int], last_epoch: int = -1) -> None:
        groups = optimizer.param_groups
        if len(group_thaw_steps) != len(groups):
            raise ValueError(f"{len(group_thaw_steps)} thaw steps for {len(groups)} optimizer param groups.")
        if callable(base_lambdas):
            base_lambdas = [base_lambdas] * len(groups)
        if len(base_lambdas) != len(groups):
            raise ValueError(f"{len(base_lambdas)} schedule functions for {len(groups)} optimizer param groups.")
        self.thaw_steps = [int(step) for step in group_thaw_steps]
        lambdas = [_masked(fn, at) for fn, at in zip(base_lambdas, self.thaw_steps, strict=True)]
        super().__init__(optimizer, lambdas, last_epoch)

    def step(self, epoch: int | None = None) -> None:  # noqa: D102 - LambdaLR.step, plus the frozen flags
        super().step(epoch)
        for group, at in zip(self.optimizer.param_groups, self.thaw_steps, strict=True):
            group[FROZEN_KEY] = self.last_epoch < at

    def rates_at(self, step: int) -> list[float]:
        """The learning rate of every param group at ``step`` (what the optimizer uses for that step).

        Args:
            step: Optimisation step (0-based).

        Returns:
            One rate per optimizer param group.
        """
        return [base * fn(step) for base, fn in zip(self.base_lrs, self.lr_lambdas, strict=True)]
