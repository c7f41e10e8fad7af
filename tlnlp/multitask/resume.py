"""The run's output folder: refuse to write over someone's files, and resume an interrupted run with its settings."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tlnlp.config.run_folder import ensure_claimed
from tlnlp.runs import write_json
from tlnlp.training import OutputDirError, prepare_output_dir

__all__ = ["PLAN_FILE", "plan_differences", "resolve_resume", "write_plan"]

#: Written into the run's folder before training: the tasks and settings (a resumed run must match them).
PLAN_FILE = "multitask_plan.json"


def plan_differences(old: Mapping[str, Any], new: Mapping[str, Any], where: str = "") -> list[str]:
    """Dotted names of the settings that differ between two plans (``tasks[1].data.max_train_samples``...)."""
    found: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        name = f"{where}.{key}" if where else str(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += plan_differences(a, b, name)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                if isinstance(x, Mapping) and isinstance(y, Mapping):
                    found += plan_differences(x, y, f"{name}[{i}]")
                elif x != y:
                    found.append(f"{name}[{i}]")
        elif a != b:
            found.append(name)
    return found


def _search_to_continue(out: Path, search_folder: str | None) -> bool:
    """Whether ``out`` holds a run interrupted during its search: its plan, the search's folder and nothing else."""
    if search_folder is None or not (out / search_folder).is_dir() or not (out / PLAN_FILE).is_file():
        return False
    return all(p.name in (PLAN_FILE, search_folder) or p.name.startswith(".") for p in out.iterdir())


def _check_same_plan(saved: Path, plan: Mapping[str, Any], what: str, out: Path) -> None:
    differ = plan_differences(json.loads(saved.read_text(encoding="utf-8")), plan)
    if differ:
        raise OutputDirError(f"{what}: the run in output_dir={str(out)!r} started with "
                             f"other settings ({', '.join(differ)} differ). Resume with the settings it started "
                             "with, or start the new run in another --output_dir.")


def resolve_resume(train_args: Any, plan: Mapping[str, Any], search_folder: str | None = None) -> str | None:
    """Check the run's ``output_dir`` and resolve ``--resume_from_checkpoint``; writes nothing.

    Without it, a non-empty ``output_dir`` is refused unless ``--overwrite_output_dir`` is set, or the run searches
    (``search_folder``) and the folder holds only the same run's interrupted search, which then continues. With
    ``last`` (or a checkpoint folder) the folder must hold a multi-task run that started with the same tasks and
    settings.

    Args:
        train_args: The run's ``TrainingArgs``.
        plan: The run's tasks and settings, compared with the saved ones when resuming.
        search_folder: The search's folder inside ``output_dir``, when the run searches first.

    Returns:
        The checkpoint to resume from, or None.

    Raises:
        OutputDirError: The folder is not safe to write into as asked, holds no run to resume, or a run that started
            with other settings (the message names them).
    """
    resume = getattr(train_args, "resume_from_checkpoint", None)
    out = Path(train_args.output_dir)
    if resume is None and not train_args.overwrite_output_dir and _search_to_continue(out, search_folder):
        _check_same_plan(out / PLAN_FILE, plan, "continuing the interrupted --hp_search", out)
        train_args.overwrite_output_dir = True  # only for the folder check: the search's files stay
        try:
            return prepare_output_dir(train_args)
        finally:
            train_args.overwrite_output_dir = False
    if resume is None:
        return prepare_output_dir(train_args)
    saved = out / PLAN_FILE
    if not saved.is_file():
        raise OutputDirError(f"--resume_from_checkpoint {resume}: output_dir={str(out)!r} holds no multi-task run "
                             f"({PLAN_FILE} is missing). Give the output_dir of the interrupted run, or start "
                             "without --resume_from_checkpoint.")
    _check_same_plan(saved, plan, f"--resume_from_checkpoint {resume}", out)
    return prepare_output_dir(train_args)


def write_plan(train_args: Any, plan: Mapping[str, Any]) -> None:
    """Every process waits until each has checked the folder; then the main process writes the plan."""
    with train_args.main_process_first(desc="multi-task plan"):
        pass
    if train_args.process_index == 0:
        ensure_claimed(train_args.output_dir)  # locked and marked unfinished before its first file
        Path(train_args.output_dir).mkdir(parents=True, exist_ok=True)
        write_json(Path(train_args.output_dir) / PLAN_FILE, dict(plan))
