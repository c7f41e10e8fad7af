"""``learning_rates.png``: each layer group's learning rate over the optimisation steps, with the thaw points marked.

:class:`LayerRatesCallback` writes it at the end of a run whose ULMFiT options are on; :func:`plot_layer_rates`
draws it from the rate curves that :func:`rate_curves` reads off the scheduler.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from transformers import TrainerCallback, TrainingArguments

from tlnlp.methods.ulmfit.schedules import LayerwiseLR

__all__ = ["LR_PLOT_NAME", "LayerRatesCallback", "plot_layer_rates", "rate_curves"]

logger = logging.getLogger(__name__)

#: File name of the per-group learning-rate plot in a run's output folder.
LR_PLOT_NAME = "learning_rates.png"


def _save_png(fig: Any, path: Path) -> Path:
    """Render ``fig`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred: matplotlib is only needed to plot

    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            fig.savefig(handle, format="png", dpi=120)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def plot_layer_rates(curves: Mapping[str, Sequence[float]], path: str | os.PathLike[str], *,
                     thaw_steps: Mapping[str, int] | None = None, title: str | None = None) -> Path:
    """Plot one learning-rate line per layer group (input groups in dark colours, the head in light ones).

    When the rates span more than a factor of 20 (discriminative rates), the axis is logarithmic and a group's
    frozen steps (rate 0) are left out, so its line starts at its thaw point.

    Args:
        curves: Group name -> its rate at steps 0, 1, 2, ... (input-side groups first).
        path: Destination PNG; parent folders are created; written atomically.
        thaw_steps: Group name -> the step it starts training; steps > 0 are marked with a dotted line and a dot.
        title: Figure title; defaults to "Learning rate per layer group".

    Returns:
        The path written.

    Raises:
        ValueError: ``curves`` is empty.
    """
    from matplotlib import colormaps  # deferred: matplotlib is only needed to plot
    from matplotlib.figure import Figure  # deferred: as above

    if not curves:
        raise ValueError("curves is empty: no layer group to plot.")
    thaw_steps = dict(thaw_steps or {})
    fig = Figure(figsize=(9.0, 4.8), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["viridis"]
    names = list(curves)
    positive = [rate for name in names for rate in curves[name] if rate > 0]
    log_scale = bool(positive) and max(positive) / min(positive) > 20
    for index, name in enumerate(names):
        rates = [float(rate) for rate in curves[name]]
        colour = cmap(index / max(len(names) - 1, 1))
        shown = [rate if rate > 0 or not log_scale else float("nan") for rate in rates]  # frozen: not drawn
        ax.plot(range(len(rates)), shown, label=name, color=colour, linewidth=1.3, drawstyle="steps-post")
        thaw = thaw_steps.get(name, 0)
        if 0 < thaw < len(rates):
            ax.axvline(thaw, color=colour, linestyle=":", linewidth=0.9, alpha=0.8)
            ax.plot([thaw], [rates[thaw]], marker="o", color=colour, markersize=4)
    if log_scale:
        ax.set_yscale("log")
    if any(0 < step for step in thaw_steps.values()):
        ax.plot([], [], linestyle=":", color="grey", label="thaw point")
    ax.set_xlabel("optimisation step")
    ax.set_ylabel("learning rate (log scale)" if log_scale else "learning rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(names) > 10 else 1, loc="upper right")
    ax.set_title(title or "Learning rate per layer group")
    return _save_png(fig, Path(path))


def rate_curves(optimizer: torch.optim.Optimizer, scheduler: LRScheduler,
                total_steps: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Each layer group's learning rate at every step, and its thaw step, from the scheduler's functions.

    Args:
        optimizer: The optimizer (param groups named as in :func:`layer_rates`).
        scheduler: A ``LambdaLR`` (e.g. :class:`~tlnlp.methods.ulmfit.schedules.LayerwiseLR`).
        total_steps: Number of optimisation steps.

    Returns:
        ``(name -> rates for steps 0..total_steps-1, name -> thaw step)`` (thaw steps only for a
        ``LayerwiseLR``).

    Raises:
        TypeError: The scheduler is not a ``LambdaLR``.
    """
    if not isinstance(scheduler, LambdaLR):
        raise TypeError(f"{type(scheduler).__name__} has no per-step rate functions to plot.")
    curves: dict[str, list[float]] = {}
    thaws: dict[str, int] = {}
    for index, (group, base, fn) in enumerate(zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas,
                                                  strict=True)):
        name = str(group.get("name", f"group_{index}"))
        if name in curves:
            continue
        curves[name] = [base * fn(step) for step in range(total_steps)]
        if isinstance(scheduler, LayerwiseLR):
            thaws[name] = scheduler.thaw_steps[index]
    return curves, thaws


class LayerRatesCallback(TrainerCallback):
    """At the end of training, write ``learning_rates.png``: each group's rate over the steps, thaws marked.

    Only the main process writes. Per-group rates also reach TensorBoard through the Trainer's logs
    (``lr/<group>``, see :meth:`tlnlp.methods.ulmfit.Ulmfit.log_values`).

    Args:
        title: Figure title.
    """

    def __init__(self, title: str | None = None) -> None:
        self.title = title

    def on_train_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        """Write the plot into ``args.output_dir``."""
        optimizer, scheduler = kwargs.get("optimizer"), kwargs.get("lr_scheduler")
        if not state.is_world_process_zero or optimizer is None or not isinstance(scheduler, LambdaLR):
            return
        curves, thaws = rate_curves(optimizer, scheduler, max(int(state.max_steps), 1))
        path = plot_layer_rates(curves, Path(args.output_dir) / LR_PLOT_NAME, thaw_steps=thaws, title=self.title)
        logger.info("Per-group learning rates plotted in %s", path)
