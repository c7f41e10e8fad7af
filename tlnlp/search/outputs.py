"""What a search leaves in ``<output_dir>/hp_search/``: the trials table, the plot and the best trial's config."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tlnlp.config import rerun_command, resolved_config
from tlnlp.report import save_figure
from tlnlp.search.backends import TrialRecord

__all__ = ["plot_search", "write_best_config", "write_trials_table"]

#: Settings of the run that a rerun of the best trial must not inherit.
_TRANSIENT = ("resume_from_checkpoint", "overwrite_output_dir")


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def write_trials_table(folder: Path, records: Sequence[TrialRecord], objective: str,
                       names: Sequence[str]) -> tuple[Path, Path]:
    """``trials.csv`` and ``trials.md``: one row per trial (number, state, objective, each searched value, time).

    Returns:
        The two paths.
    """
    header = ["trial", "state", objective, *names, "seconds"]
    rows = [[r.number, r.state, r.value, *(r.values.get(n) for n in names), r.duration_s] for r in records]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    csv_path = _atomic_write(Path(folder) / "trials.csv", buffer.getvalue())
    return csv_path, _atomic_write(Path(folder) / "trials.md", "\n".join(lines) + "\n")


def plot_search(folder: Path, records: Sequence[TrialRecord], objective: str, direction: str) -> Path:
    """``search.png``: each finished trial's objective and the best so far, by trial number."""
    # deferred: matplotlib is slow to import; only drawing needs it (no pyplot: no global state)
    from matplotlib.figure import Figure

    done = [r for r in records if r.value is not None and math.isfinite(r.value)]
    pick = max if direction == "maximize" else min
    best: list[float] = []
    for record in done:
        best.append(record.value if not best else pick(best[-1], record.value))
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    ax.plot([r.number for r in done], [r.value for r in done], "o", label="trial")
    ax.step([r.number for r in done], best, where="post", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{objective} (validation)")
    ax.set_title(f"Hyperparameter search: {len(done)} finished trials ({direction})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    return save_figure(fig, Path(folder) / "search.png")


def write_best_config(folder: Path, config_objects: Sequence[Any], recipe: str, best: TrialRecord,
                      objective: str, overrides: Mapping[str, Any] | None = None) -> Path:
    """``best_config.yaml``: the run's settings with the best trial's values; it parses with the recipe.

    Its ``output_dir`` is the run's folder with ``-best`` appended, so that it runs as it is. ``overrides`` replace
    settings so that the rerun starts where the trials started (e.g. from a stage the run trained before its
    search); the header names them.
    """
    config = resolved_config(*config_objects)
    for key in _TRANSIENT:
        config.pop(key, None)
    config["output_dir"] = f"{config.get('output_dir', 'runs/run')}-best"
    config.update(overrides or {})
    path = Path(folder) / "best_config.yaml"
    header = (f"# The best trial of the hyperparameter search: trial {best.number}, {objective}={best.value:.6g} "
              f"(validation).\n# Reproduce it with:\n#   {rerun_command(recipe, ('--config', str(path)))}\n")
    if overrides:
        header += (f"# It starts where the trials started: {', '.join(f'{k}={v}' for k, v in overrides.items())}."
                   "\n")
    return _atomic_write(path, header + yaml.safe_dump(config, sort_keys=False))
