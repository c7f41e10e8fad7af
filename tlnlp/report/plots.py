"""Plots for run reports: confusion matrices and training curves, written as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` and rendered with ``FigureCanvasAgg`` directly, so
no pyplot state or matplotlib backend is touched, and files are written atomically (temporary file + rename),
so a reader never sees a half-written PNG.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tlnlp.tasks import Evaluation
from tlnlp.tasks.classification import confusion_matrix

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure  # deferred: as in save_figure

__all__ = ["plot_confusion_matrix", "plot_evaluation", "plot_training_curves", "save_figure"]

logger = logging.getLogger(__name__)

_MAX_LABEL_CHARS = 24
_CELL_TEXT_MAX_LABELS = 30  # above this many labels the cells carry no text
_TWO_LINE_MAX_LABELS = 12  # up to this many labels a cell shows count and share; above, the share alone
_PREFERRED_EVAL_METRICS = ("eval_f1_macro", "eval_accuracy", "eval_f1", "eval_exact_match", "eval_mcc")
_NON_QUALITY_SUFFIXES = ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch")


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Render a figure to PNG atomically: a temporary file in the same folder, then a rename.

    Args:
        fig: A :class:`matplotlib.figure.Figure` (a ``FigureCanvasAgg`` is attached if it has none).
        path: Destination file; parent folders are created.
        dpi: Resolution in dots per inch.

    Returns:
        The destination path.
    """
    # deferred: matplotlib is slow to import; only drawing needs it
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    if path.suffix.lower() != ".png":
        logger.warning("Writing PNG data to %s, whose name does not end in .png.", path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            fig.savefig(handle, format="png", dpi=dpi)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info("Wrote %s", path)
    return path


def _shorten(label: str, limit: int = _MAX_LABEL_CHARS) -> str:
    """Cut a long label to ``limit`` characters with an ellipsis."""
    label = str(label)
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _row_shares(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows with no true examples stay 0)."""
    totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
    shares = np.zeros(counts.shape, dtype=np.float64)
    np.divide(counts, totals, out=shares, where=totals != 0)
    return shares


def _layout(num_labels: int, names: Sequence[str]) -> dict[str, Any]:
    """Figure size, font sizes and tick rotation that keep up to ~50 labels readable."""
    longest = max((len(n) for n in names), default=1)
    cell = 0.6 if num_labels <= 10 else max(0.3, 0.6 - 0.01 * (num_labels - 10))
    label_room = min(0.09 * longest, 2.2)
    side = min(max(3.0 + num_labels * cell + label_room, 5.5), 22.0)
    tick_size = max(6.5, min(10.0, cell * 22))
    if num_labels > 25:
        rotation = 90
    elif num_labels > 6 or longest > 8:
        rotation = 45
    else:
        rotation = 0
    cell_size = max(6.0, min(10.0, cell * 16))
    return {"size": (side + 1.2, side), "tick_size": tick_size, "rotation": rotation, "cell_size": cell_size,
            "bar_aspect": 20 + num_labels / 2}


def _annotate_cells(ax: Axes, counts: np.ndarray, shares: np.ndarray, colour: np.ndarray, vmax: float,
                    font_size: float) -> None:
    """Write each cell's count and row share (or the share alone when there are many labels)."""
    num_labels = counts.shape[0]
    if num_labels > _CELL_TEXT_MAX_LABELS:
        return
    for i in range(num_labels):
        for j in range(num_labels):
            if num_labels <= _TWO_LINE_MAX_LABELS:
                text = f"{counts[i, j]}\n{shares[i, j]:.0%}"
            else:
                text = f"{shares[i, j]:.0%}" if counts[i, j] else ""
            dark = colour[i, j] > 0.55 * vmax
            ax.text(j, i, text, ha="center", va="center", fontsize=font_size,
                    color="white" if dark else "black")


def plot_confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                          labels: Sequence[str], path: str | os.PathLike[str], normalize: bool = True,
                          title: str | None = None) -> Path:
    """Draw a confusion matrix (rows: true label, columns: predicted label) to a PNG file.

    Each cell shows its count and its share of the true label's row; with more than 12 labels only the share,
    and with more than 30 no text (the colours and colour bar carry it). Long label names are shortened and
    rotated. The title reports accuracy and the number of rows.

    Args:
        y_true: True class ids in ``[0, len(labels))``.
        y_pred: Predicted class ids, same length.
        labels: Label names, indexed by class id.
        path: Destination PNG; parent folders are created; written atomically.
        normalize: Colour cells by row share (``True``) or by raw count (``False``).
        title: First title line; defaults to "Confusion matrix".

    Returns:
        The path written.

    Raises:
        ValueError: If ``labels`` is empty, the arrays are empty, or hold ids outside the label range.
    """
    from matplotlib.figure import Figure  # deferred: as in save_figure

    names = [_shorten(name) for name in labels]
    if not names:
        raise ValueError("labels is empty: pass the label names, indexed by class id.")
    counts = confusion_matrix(y_true, y_pred, len(names))
    total = int(counts.sum())
    if total == 0:
        raise ValueError("Cannot plot a confusion matrix of zero rows.")
    shares = _row_shares(counts)
    colour = shares if normalize else counts.astype(np.float64)
    vmax = 1.0 if normalize else max(1.0, float(counts.max()))
    layout = _layout(len(names), names)

    fig = Figure(figsize=layout["size"], layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(colour, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    colour_bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, aspect=layout["bar_aspect"])
    colour_bar.set_label("share of true label" if normalize else "count")
    ticks = np.arange(len(names))
    rotated = layout["rotation"] != 0
    ax.set_xticks(ticks, labels=names, fontsize=layout["tick_size"], rotation=layout["rotation"],
                  ha="right" if rotated else "center", va="center" if layout["rotation"] == 90 else "top",
                  rotation_mode="anchor")
    ax.set_yticks(ticks, labels=names, fontsize=layout["tick_size"])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    _annotate_cells(ax, counts, shares, colour, vmax, layout["cell_size"])
    accuracy = float(np.trace(counts)) / total
    ax.set_title(f"{title or 'Confusion matrix'}\naccuracy {accuracy:.3f} (n={total})")
    return save_figure(fig, path, dpi=110 if len(names) > 25 else 120)


def plot_evaluation(evaluation: Evaluation) -> list[Path]:
    """Draw the figures a task's evaluation asks for (:meth:`tlnlp.tasks.Task.evaluate`): its confusion matrices.

    Args:
        evaluation: What the task's ``evaluate`` returned.

    Returns:
        The paths written.
    """
    return [plot_confusion_matrix(figure.gold, figure.predicted, figure.labels, figure.path, title=figure.title)
            for figure in evaluation.figures]


def _is_number(value: Any) -> bool:
    """True for finite real numbers (bools excluded)."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)


def _series(log_history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """Steps and values of one logged key, in log order."""
    steps, values = [], []
    for position, entry in enumerate(log_history):
        if key in entry and _is_number(entry[key]):
            steps.append(float(entry.get("step", position)))
            values.append(float(entry[key]))
    return steps, values


def _pick_metric(log_history: Sequence[dict[str, Any]], metric: str | None) -> str | None:
    """The eval metric to plot: the one asked for, else a preferred one, else any quality metric logged."""
    logged = {key for entry in log_history for key, value in entry.items() if _is_number(value)}
    if metric is not None:
        key = metric if metric.startswith("eval_") else f"eval_{metric}"
        if key not in logged:
            available = sorted(k for k in logged if k.startswith("eval_"))
            raise ValueError(f"metric={metric!r}: {key!r} is not in the log history; logged: {available}.")
        return key
    for key in _PREFERRED_EVAL_METRICS:
        if key in logged:
            return key
    others = sorted(k for k in logged if k.startswith("eval_") and not k.endswith(_NON_QUALITY_SUFFIXES))
    return others[0] if others else None


def plot_training_curves(log_history: Sequence[dict[str, Any]], path: str | os.PathLike[str],
                         metric: str | None = None, title: str | None = None) -> Path:
    """Plot train and eval loss, and one eval metric, against the optimisation step.

    Args:
        log_history: ``Trainer.state.log_history``: dicts with ``step`` and ``loss`` (training logs) or
            ``eval_loss`` and ``eval_<metric>`` (evaluation logs).
        path: Destination PNG; parent folders are created; written atomically.
        metric: Eval metric to plot (with or without the ``eval_`` prefix); by default the first of
            f1_macro, accuracy, f1, exact_match, mcc that was logged. No metric panel if none was logged.
        title: Figure title; defaults to "Training curves".

    Returns:
        The path written.

    Raises:
        ValueError: If the history holds no loss at all, or ``metric`` was not logged.
    """
    from matplotlib.figure import Figure  # deferred: as in save_figure

    train = _series(log_history, "loss")
    evaluation = _series(log_history, "eval_loss")
    if not train[0] and not evaluation[0]:
        raise ValueError("log_history holds no 'loss' or 'eval_loss' entries; "
                         "pass trainer.state.log_history.")
    metric_key = _pick_metric(log_history, metric)

    fig = Figure(figsize=(11.0 if metric_key else 6.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 2 if metric_key else 1, squeeze=False)[0]
    loss_ax = axes[0]
    if train[0]:
        loss_ax.plot(*train, label="train loss", color="tab:blue", linewidth=1.2)
    if evaluation[0]:
        loss_ax.plot(*evaluation, label="eval loss", color="tab:orange", marker="o", markersize=4)
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("loss")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend()
    if metric_key:
        steps, values = _series(log_history, metric_key)
        metric_ax = axes[1]
        metric_ax.plot(steps, values, color="tab:green", marker="o", markersize=4)
        metric_ax.set_xlabel("step")
        metric_ax.set_ylabel(metric_key)
        best = min(values) if metric_key.endswith("loss") else max(values)
        metric_ax.set_title(f"best {best:.4f}")
        metric_ax.grid(alpha=0.3)
    fig.suptitle(title or "Training curves")
    return save_figure(fig, path)
