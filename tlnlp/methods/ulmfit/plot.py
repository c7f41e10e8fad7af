"""Plot each layer group's learning rate over the optimisation steps, with the thaw points marked."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tlnlp.report.plots import save_figure

__all__ = ["plot_layer_rates"]


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
    from matplotlib import colormaps
    from matplotlib.figure import Figure

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
    return save_figure(fig, path)
