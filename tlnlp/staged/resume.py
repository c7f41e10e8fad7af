"""The chain's output folder: refuse to write over someone's files, and resume an interrupted chain where it stopped."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlnlp.config.run_folder import claim_output_dir
from tlnlp.training import OutputDirError, prepare_output_dir

__all__ = ["PLAN_FILE", "RESULTS_FILE", "RESUME_WORDS", "ResumePoint", "check_plan", "resolve_resume"]

#: Written into the chain's folder before the first stage: every stage's settings.
PLAN_FILE = "staged_plan.json"
#: Written into the chain's folder once the whole chain has finished.
RESULTS_FILE = "staged_results.json"
#: ``--resume_from_checkpoint`` values that mean "the newest checkpoint of the interrupted stage".
RESUME_WORDS = ("last", "latest", "true", "yes", "1")


@dataclass(frozen=True)
class ResumePoint:
    """How a chain starts.

    Attributes:
        resuming: Finished stages (same settings) are skipped, the interrupted one resumes from its newest checkpoint.
        stage: With an explicit checkpoint: the stage it belongs to (from 1), which resumes from it.
        checkpoint: That checkpoint folder.
    """

    resuming: bool = False
    stage: int | None = None
    checkpoint: str | None = None


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += [f"{key}.{inner}" for inner in sorted(set(a) | set(b)) if a.get(inner) != b.get(inner)]
        elif a != b:
            found.append(key)
    return found


def check_plan(saved: Mapping[str, Any], plan: Mapping[str, Any], output_dir: str | Path) -> None:
    """Refuse to resume a chain whose stages now have other settings than when it started.

    Stages may be added at the end (they run after the others); the existing ones must match.

    Raises:
        OutputDirError: Naming the first stage that differs and what differs.
    """
    for position, (old, new) in enumerate(zip(saved.get("stages", []), plan["stages"], strict=False)):
        differ = _differences(old, new)
        if differ:
            raise OutputDirError(
                f"--resume_from_checkpoint: stage {position + 1} of the chain in output_dir={str(output_dir)!r} "
                f"started with other settings ({', '.join(differ)} differ). Resume with the settings it started "
                "with, or run the new chain in another --output_dir.")


def _checkpoint_stage(path: Path, out: Path, names: Sequence[str]) -> tuple[int, str]:
    if not path.is_dir():
        raise OutputDirError(f"--resume_from_checkpoint {str(path)!r}: no such checkpoint folder.")
    parent = path.resolve().parent
    for index, name in enumerate(names, start=1):
        if parent == (out / name).resolve():
            return index, str(path)
    raise OutputDirError(f"--resume_from_checkpoint {str(path)!r} is not a checkpoint of a stage of this chain (a "
                         f"checkpoint-* folder in {out}/stage<i>_<name>/). Give one, or 'last' to resume the "
                         "interrupted stage from its newest checkpoint.")


def _search_to_continue(out: Path, search_folder: str | None) -> bool:
    """Whether ``out`` holds a chain interrupted during (or after) its search, before the chain finished."""
    return search_folder is not None and (out / search_folder).is_dir() and not (out / RESULTS_FILE).is_file()


def resolve_resume(train_args: Any, plan: Mapping[str, Any], names: Sequence[str],
                   search_folder: str | None = None) -> ResumePoint:
    """Check the chain's ``output_dir``, hold it for this run, and resolve ``--resume_from_checkpoint``.

    Without it, a non-empty ``output_dir`` is refused unless ``--overwrite_output_dir`` is set (then every stage
    runs again). With ``last`` (or ``true``), the folder must hold a chain with the same stage settings; an explicit
    ``checkpoint-*`` folder must lie in one of its stage folders. With a search (``search_folder``), the same
    command rerun on a chain interrupted during its search continues it, as ``last`` would: finished stages are
    skipped and the search continues.

    Args:
        train_args: The chain's ``TrainingArgs``.
        plan: The chain's plan (``{"stages": [settings, ...]}``), compared with the saved one.
        names: The stages' folder names.
        search_folder: The search's folder inside the chain's, when the chain searches its last stage.

    Returns:
        Where the chain starts.

    Raises:
        OutputDirError: The folder is not safe to write into as asked, or holds no chain to resume.
    """
    out = Path(train_args.output_dir)
    resume = getattr(train_args, "resume_from_checkpoint", None)
    saved = out / PLAN_FILE
    if resume is None:
        if saved.is_file() and not train_args.overwrite_output_dir and _search_to_continue(out, search_folder):
            check_plan(json.loads(saved.read_text(encoding="utf-8")), plan, out)
            claim_output_dir(out)  # the same command, rerun: the chain continues its search
            return ResumePoint(resuming=True)
        if saved.is_file() and not train_args.overwrite_output_dir:
            raise OutputDirError(
                f"output_dir={str(out)!r} holds a staged run. Add --resume_from_checkpoint last to continue it "
                "(finished stages are skipped), choose another --output_dir, or add --overwrite_output_dir to run "
                "every stage again over it.")
        prepare_output_dir(train_args)
        return ResumePoint()
    if not saved.is_file():
        raise OutputDirError(f"--resume_from_checkpoint {resume}: output_dir={str(out)!r} holds no staged run "
                             f"({PLAN_FILE} is missing). Give the output_dir of the interrupted chain, or start "
                             "without --resume_from_checkpoint.")
    check_plan(json.loads(saved.read_text(encoding="utf-8")), plan, out)
    point = ResumePoint(resuming=True)
    if str(resume).lower() not in RESUME_WORDS:
        stage, checkpoint = _checkpoint_stage(Path(str(resume)), out, names)
        point = ResumePoint(resuming=True, stage=stage, checkpoint=checkpoint)
    claim_output_dir(out)  # the chain holds its folder again (lock, marker) until its last file
    return point
