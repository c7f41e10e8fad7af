"""An ensemble's members: their seeds and folders, their training arguments, and which of them are finished.

Member ``i`` of a run with ``--seed s`` trains with seed ``s + i`` into ``<output_dir>/members/seed-<s + i>/``, as an
ordinary run of the recipe (its own model, results, card, ``run_config.yaml``). A member folder that holds a
finished run (no unfinished-run marker, ``all_results.json`` written) with the settings this run would give it is
reused; an unfinished one is resumed from its newest checkpoint, or trained again.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tlnlp.config import resolved_config
from tlnlp.config.run_folder import has_content, unfinished_info
from tlnlp.ensemble.averaging import checkpoint_folders

__all__ = ["MEMBERS_FOLDER", "Member", "changed_settings", "is_finished", "member_training_args", "plan_members"]

logger = logging.getLogger(__name__)

#: The folder of an ensemble run that holds one ordinary run folder per member.
MEMBERS_FOLDER = "members"
#: Settings that may differ between a member's first run and a rerun without changing what it trains.
_RUN_ONLY = ("output_dir", "overwrite_output_dir", "resume_from_checkpoint", "push_to_hub", "hub_model_id",
             "hub_strategy", "hub_private_repo", "logging_dir", "report_to", "run_name", "disable_tqdm")
#: Settings a member's ``run_config.yaml`` may leave out (a run fitted without the Trainer records no
#: ``EnsembleArgs``), with the value that leaving them out means.
_DEFAULTS = {"ensemble_seeds": 1, "average_checkpoints": 0}


@dataclass(frozen=True)
class Member:
    """One member of an ensemble.

    Attributes:
        seed: Its training seed.
        folder: Its run folder (``<output_dir>/members/seed-<seed>``).
    """

    seed: int
    folder: Path

    @property
    def name(self) -> str:
        """The member's folder, relative to the ensemble's (as ``ensemble.json`` lists it)."""
        return f"{MEMBERS_FOLDER}/seed-{self.seed}"


def plan_members(output_dir: str | Path, seed: int, size: int) -> list[Member]:
    """The ``size`` members of an ensemble in ``output_dir`` whose first seed is ``seed``."""
    return [Member(seed + i, Path(output_dir) / MEMBERS_FOLDER / f"seed-{seed + i}") for i in range(size)]


def is_finished(folder: Path) -> bool:
    """Whether ``folder`` holds a finished run: results and settings written, no unfinished-run marker."""
    return (unfinished_info(folder) is None and (folder / "all_results.json").is_file()
            and (folder / "run_config.yaml").is_file())


def changed_settings(folder: Path, config_objects: tuple[Any, ...]) -> list[str]:
    """The settings in which the finished run in ``folder`` differs from ``config_objects`` (run-only ones aside).

    Args:
        folder: A finished member's folder (its ``run_config.yaml``).
        config_objects: The argument dataclasses the member would be trained with now.

    Returns:
        The names of the settings that differ, sorted (empty: the member can be reused).
    """
    text = (folder / "run_config.yaml").read_text(encoding="utf-8")
    saved = yaml.safe_load(text) or {}
    wanted = yaml.safe_load(yaml.safe_dump(resolved_config(*config_objects)))  # the same round trip as the file
    saved = {**{k: v for k, v in _DEFAULTS.items() if k in wanted}, **saved}
    keys = (set(saved) | set(wanted)) - set(_RUN_ONLY)
    return sorted(key for key in keys if saved.get(key) != wanted.get(key))


def member_training_args(train_args: Any, member: Member, write_over: bool = False) -> Any:
    """The ``TrainingArguments`` of one member: the run's, with the member's folder and seed, and no push.

    A member folder left unfinished by an interrupted run resumes from its newest ``checkpoint-*`` folder when it
    has one, and is trained again from the start otherwise (as it is when ``write_over``).

    Args:
        train_args: The ensemble run's ``TrainingArguments`` (unchanged; a copy is returned).
        member: The member.
        write_over: Train the member again even over a finished run (``--overwrite_output_dir``).
    """
    args = copy.deepcopy(train_args)  # keeps what parse_args recorded on it (the stage flags given)
    args.output_dir, args.seed = str(member.folder), member.seed
    args.push_to_hub, args.resume_from_checkpoint, args.overwrite_output_dir = False, None, False
    if not has_content(member.folder):
        return args
    newest = checkpoint_folders(member.folder)[-1:] if unfinished_info(member.folder) is not None else []
    if newest and not write_over:
        logger.info("Ensemble member %s was interrupted: resuming from %s.", member.name, newest[0].name)
        args.resume_from_checkpoint = str(newest[0])
    else:
        args.overwrite_output_dir = True
    return args
