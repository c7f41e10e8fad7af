"""The ladder's figures: learning curves (metric vs labels per class) and cost vs accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlnlp.report import save_figure

__all__ = ["plot_cost_accuracy", "plot_learning_curves"]

_MARKERS = "osD^v<>phX*"


def _labels_per_class(row: dict[str, Any]) -> float:
    if "labels_per_class" in row:
        return float(row["labels_per_class"])
    return row["n_train"] / max(1, row["num_labels"])


def plot_learning_curves(rows: list[dict[str, Any]], path: str | Path, metric: str = "accuracy",
                         title: str | None = None) -> Path:
    """One line per strategy: ``metric`` (mean, error bars = std over seeds) vs labelled examples per class.

    Strategies that use no labels (zero-shot) are drawn as horizontal dashed lines. The x axis is logarithmic;
    the ``all`` budget sits at its real number of rows per class.
    """
    from matplotlib.figure import Figure  # deferred: matplotlib loads only when a plot is drawn

    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    for i, name in enumerate(strategies):
        mine = [r for r in rows if r["strategy"] == name]
        if mine[0]["kind"] == "zero_shot":
            ax.axhline(mine[0][f"{metric}_mean"], linestyle="--", color=f"C{i}", label=f"{name} (no labels)")
            continue
        mine.sort(key=_labels_per_class)
        xs = [_labels_per_class(r) for r in mine]
        ax.errorbar(xs, [r[f"{metric}_mean"] for r in mine], yerr=[r[f"{metric}_std"] for r in mine],
                    marker=_MARKERS[i % len(_MARKERS)], capsize=3, color=f"C{i}", label=name)
    ax.set_xscale("log")
    ticks = sorted({_labels_per_class(r): r["budget"] for r in rows if r["kind"] != "zero_shot"}.items())
    if ticks:
        ax.set_xticks([x for x, _ in ticks], [f"{b}\n({x:.0f})" if b == "all" else str(b) for x, b in ticks])
        ax.minorticks_off()
    ax.set_xlabel("labelled training examples per class (log scale)")
    return _finish(fig, ax, metric, title or f"Transfer ladder: {metric} vs labels", path)


def plot_cost_accuracy(rows: list[dict[str, Any]], path: str | Path, metric: str = "accuracy",
                       title: str | None = None) -> Path:
    """Each (strategy, budget) as a point: ``metric`` vs compute seconds (training + scoring the test split).

    Marker per strategy, the budget written next to each point, error bars = std over seeds, log-scaled x.
    """
    from matplotlib.figure import Figure  # deferred: matplotlib loads only when a plot is drawn

    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    for i, name in enumerate(strategies):
        mine = [r for r in rows if r["strategy"] == name]
        xs = [max(1e-3, r["train_time_s"] + r["inference_ms_per_example"] * r["n_test"] / 1000) for r in mine]
        ys = [r[f"{metric}_mean"] for r in mine]
        ax.errorbar(xs, ys, yerr=[r[f"{metric}_std"] for r in mine], fmt=_MARKERS[i % len(_MARKERS)],
                    capsize=3, color=f"C{i}", label=name)
        labels: dict[tuple[float, float], list[str]] = {}  # budgets that share a cell (few-shot's capped shots)
        for x, y, row in zip(xs, ys, mine, strict=True):
            labels.setdefault((x, y), []).append(str(row["budget"]))
        for (x, y), budgets in labels.items():
            ax.annotate(", ".join(budgets), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("compute seconds per cell: training + scoring the test split (log scale)")
    return _finish(fig, ax, metric, title or f"Cost vs {metric} (labels per class beside each point)", path)


def _finish(fig: Any, ax: Any, metric: str, title: str, path: str | Path) -> Path:
    """The y label, title, grid and legend both ladder plots share; saves the figure."""
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, path)
