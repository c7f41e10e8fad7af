"""What a run cost: trainable parameters, weights on disk, peak memory and train time, for results and the card."""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["peak_rss_mb", "resource_metrics", "resources_section", "weights_size_mb"]

_MB = 1024 * 1024


def peak_rss_mb() -> float:
    """Peak resident memory (RSS) of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MB if sys.platform == "darwin" else peak / 1024  # macOS reports bytes, Linux KiB


def weights_size_mb(folder: str | Path) -> float:
    """Size on disk of the weights saved in ``folder`` (``*.safetensors`` files, adapter or full model), in MiB."""
    return sum(path.stat().st_size for path in Path(folder).glob("*.safetensors")) / _MB


def resource_metrics(params: dict[str, int | float], folder: str | Path, adapter: bool) -> dict[str, float]:
    """The resource figures of a run, as ``train_*`` metrics for ``all_results.json``.

    Args:
        params: Counts from :func:`tlnlp.models.count_parameters` of the trained model.
        folder: The folder the final weights were saved to.
        adapter: Whether the saved weights are an adapter (then ``train_adapter_size_mb`` is also given).

    Returns:
        ``train_trainable_parameters``, ``train_total_parameters``, ``train_trainable_percent``,
        ``train_saved_weights_mb``, ``train_peak_rss_mb`` (and ``train_peak_gpu_memory_mb`` on a GPU, and
        ``train_adapter_size_mb`` for adapters).
    """
    size = round(weights_size_mb(folder), 4)
    metrics: dict[str, float] = {
        "train_trainable_parameters": params["trainable"],
        "train_total_parameters": params["total"],
        "train_trainable_percent": round(float(params["trainable_percent"]), 4),
        "train_saved_weights_mb": size,
        "train_peak_rss_mb": round(peak_rss_mb(), 1),
    }
    if adapter:
        metrics["train_adapter_size_mb"] = size
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        metrics["train_peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / _MB, 1)
    return metrics


def resources_section(metrics: dict[str, Any]) -> str:
    """A markdown table of the run's resource figures, for the model card."""
    rows = [
        ("Trainable parameters", metrics.get("train_trainable_parameters"), "{:,}"),
        ("Total parameters", metrics.get("train_total_parameters"), "{:,}"),
        ("Trainable share", metrics.get("train_trainable_percent"), "{:.3f}%"),
        ("Adapter size on disk", metrics.get("train_adapter_size_mb"), "{:.2f} MiB"),
        ("Weights saved", metrics.get("train_saved_weights_mb"), "{:.2f} MiB"),
        ("Peak memory (RSS, main process)", metrics.get("train_peak_rss_mb"), "{:.0f} MiB"),
        ("Peak GPU memory", metrics.get("train_peak_gpu_memory_mb"), "{:.0f} MiB"),
        ("Train time", metrics.get("train_runtime"), "{:.1f} s"),
        ("Train samples per second", metrics.get("train_samples_per_second"), "{:.2f}"),
    ]
    lines = ["| resource | value |", "|---|---|"]
    lines += [f"| {name} | {fmt.format(value)} |" for name, value, fmt in rows if value is not None]
    return "\n".join(lines)
