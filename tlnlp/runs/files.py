"""Files every run writes whole: JSON results, the environment record, the reproduce command, the printed table."""

from __future__ import annotations

import json
import logging
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from tlnlp.config.launch import current_launch, rerun_command

__all__ = ["environment_info", "format_metrics_table", "reproduce_command", "write_json"]

logger = logging.getLogger(__name__)

_PACKAGES = ("tlnlp", "torch", "transformers", "datasets", "accelerate", "peft", "evaluate", "huggingface_hub",
             "tokenizers", "safetensors", "numpy", "scikit-learn")
_SECRET_FLAGS = ("--token", "--hub_token")


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def environment_info(seed: int, data_fingerprint: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Package versions, platform, seed and data fingerprint: what it takes to reproduce a result."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "seed": seed,
        "data_fingerprint": data_fingerprint,
        **(extra or {}),
    }


def _without_secrets(args: list[str]) -> list[str]:
    """``args`` with the value of every token flag replaced by ``***``."""
    clean: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            clean.append("***")
            hide_next = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in _SECRET_FLAGS:
            if "=" in arg:
                clean.append(f"{flag}=***")
            else:
                clean.append(arg)
                hide_next = True
            continue
        clean.append(arg)
    return clean


def reproduce_command(argv: list[str] | None = None, script: str | None = None) -> str:
    """The launch command of this run, in the form it was started with, any token value replaced by ``***``.

    A recipe started by ``tlnlp train`` or ``tlnlp.train`` (see :mod:`tlnlp.config.launch`) gets the
    ``tlnlp train <recipe> ...`` form; a script gets ``accelerate launch <script> ...`` with the script's path
    relative to the working folder.
    """
    launch = current_launch()
    if argv is None and launch.kind != "script":
        return rerun_command(launch.recipe or "classification", _without_secrets(list(launch.argv)))
    args = list(sys.argv if argv is None else argv)
    script_path = script or args[0]
    try:
        script_path = str(Path(script_path).resolve().relative_to(Path.cwd()))
    except ValueError:
        script_path = Path(script_path).name if script_path.endswith(".py") else script_path
    return "accelerate launch " + " ".join(shlex.quote(a) for a in [script_path, *_without_secrets(args[1:])])


def format_metrics_table(metrics: dict[str, float], title: str = "Results") -> str:
    """A fixed-width table of split | metric | value for printing at the end of a run."""
    rows = []
    for key, value in metrics.items():
        split, _, name = key.partition("_")
        if split not in ("train", "eval", "test") or not isinstance(value, (int, float)):
            continue
        rows.append((split, name, f"{value:.4f}" if isinstance(value, float) else str(value)))
    if not rows:
        return title
    w1 = max(len(r[0]) for r in rows + [("split", "", "")])
    w2 = max(len(r[1]) for r in rows + [("", "metric", "")])
    w3 = max(len(r[2]) for r in rows + [("", "", "value")])
    lines = [title, f"{'split':<{w1}}  {'metric':<{w2}}  {'value':>{w3}}", f"{'-' * w1}  {'-' * w2}  {'-' * w3}"]
    lines += [f"{a:<{w1}}  {b:<{w2}}  {c:>{w3}}" for a, b, c in rows]
    return "\n".join(lines)

