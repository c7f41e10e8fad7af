"""``run_ensemble``: train (or reuse) every member, let their pipelines vote on the splits, write the folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlnlp.config.run_folder import claim_output_dir, close_output_dir, has_content, is_main_process, refuse_busy
from tlnlp.ensemble.args import EnsembleArgs, EnsembleError
from tlnlp.ensemble.members import (
    MEMBERS_FOLDER,
    Member,
    changed_settings,
    is_finished,
    member_training_args,
    plan_members,
)
from tlnlp.ensemble.outputs import EnsembleResult, score_splits, voting_pipeline, write_ensemble
from tlnlp.hub import push_run_from_args
from tlnlp.tasks import TASKS
from tlnlp.training import OutputDirError, only_requested_splits, requested_stages

__all__ = ["EnsembleRun", "check_ensemble", "prepare_ensemble_dir", "run_ensemble"]

logger = logging.getLogger(__name__)


@dataclass
class EnsembleRun:
    """An ensemble run: the recipe's parsed arguments, and how the recipe trains one member.

    Attributes:
        model_args: ``ModelArgs`` (every member starts from the same model).
        data_args: ``DataArgs``.
        method_args: ``MethodArgs`` (any method: the Trainer's or one fitted on sentence embeddings).
        train_args: The ensemble's ``TrainingArguments``: its ``output_dir`` and first ``seed``.
        ensemble_args: ``EnsembleArgs`` (``ensemble_seeds`` members).
        train_member: ``train_member(member_train_args)`` trains one member as an ordinary run of the recipe into
            ``member_train_args.output_dir``, passing :meth:`member_config` as the run's settings.
        recipe: The recipe's name, for ``run_config.yaml`` and the card.
    """

    model_args: Any
    data_args: Any
    method_args: Any
    train_args: Any
    ensemble_args: EnsembleArgs
    train_member: Callable[[Any], dict[str, Any]]
    recipe: str = "classification"

    def member_config(self, member_train_args: Any) -> tuple[Any, ...]:
        """The argument dataclasses of one member's run, as its ``run_config.yaml`` records them."""
        return (self.model_args, self.data_args, self.method_args, member_train_args, self.ensemble_args.for_member())


def check_ensemble(train_args: Any) -> None:
    """Refuse, before any work, flags an ensemble run cannot honour.

    Raises:
        EnsembleError: No training stage, or ``--resume_from_checkpoint``.
    """
    if not requested_stages(train_args).train:
        raise EnsembleError("ensemble_seeds trains its members, but --do_train is off. Give --do_train (or none of "
                            "--do_train/--do_eval/--do_predict); load a finished ensemble with load_pipeline.")
    if train_args.resume_from_checkpoint is not None:
        raise EnsembleError(f"resume_from_checkpoint={train_args.resume_from_checkpoint!r}: an ensemble resumes by "
                            "itself. Run the same command again without it: finished members are reused and an "
                            "interrupted one resumes from its newest checkpoint.")


def prepare_ensemble_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuse a folder that another run writes into, or that holds other files; then hold it for this run.

    A folder that holds an ensemble's ``members/`` is this run's to resume. Main process only.

    Raises:
        OutputDirError: Another run writes there, or the folder holds files of no ensemble and not ``overwrite``.
    """
    refuse_busy(output_dir)
    if has_content(output_dir) and not (output_dir / MEMBERS_FOLDER).is_dir() and not overwrite:
        raise OutputDirError(f"output_dir={str(output_dir)!r} already exists, is not empty and holds no ensemble "
                             f"({MEMBERS_FOLDER}/ is missing). Choose another --output_dir, or add "
                             "--overwrite_output_dir to write into it.")
    output_dir.mkdir(parents=True, exist_ok=True)  # held from now: a member's run holds its own folder inside
    claim_output_dir(output_dir, trains=True, may_write_over=True)


def _train_or_reuse(run: EnsembleRun, member: Member) -> bool:
    """Train one member, unless its folder holds it finished with the same settings; True when it trained."""
    write_over = bool(run.train_args.overwrite_output_dir)
    member_args = member_training_args(run.train_args, member, write_over)
    if is_finished(member.folder):
        changed = changed_settings(member.folder, run.member_config(member_args))
        if not changed:
            logger.info("Ensemble member %s is finished: reusing it.", member.name)
            return False
        if not write_over:
            raise OutputDirError(f"{member.folder} holds a finished member trained with other settings "
                                 f"({', '.join(changed)}). Rerun with the settings it was trained with, choose "
                                 "another --output_dir, or add --overwrite_output_dir to train the members again.")
    logger.info("Training ensemble member %s (seed %d).", member.name, member.seed)
    run.train_member(member_args)
    return True


def run_ensemble(run: EnsembleRun) -> dict[str, Any]:
    """Train (or reuse) ``ensemble_seeds`` members, score the splits by their soft vote and write the folder.

    Every process trains the members (a member is an ordinary, perhaps multi-process, run); the main process
    then loads the members' pipelines, scores the validation and test splits the stage flags ask for
    (:func:`tlnlp.ensemble.outputs.score_splits`) and writes the ensemble's files (:func:`write_ensemble`).

    Returns:
        The ensemble's metrics (``eval_*``, ``test_*``, ``ensemble_size``, ``member_<seed>_*``,
        ``members_mean_*``, ``ensemble_members_trained``); an empty dict on the other processes.

    Raises:
        EnsembleError: See :func:`check_ensemble`.
        OutputDirError: See :func:`prepare_ensemble_dir`; or a finished member with other settings.
    """
    train_args = run.train_args
    check_ensemble(train_args)
    out = Path(train_args.output_dir)
    if is_main_process():
        prepare_ensemble_dir(out, bool(train_args.overwrite_output_dir))
    members = plan_members(out, int(train_args.seed), run.ensemble_args.ensemble_seeds)
    trained = sum(_train_or_reuse(run, member) for member in members)
    if not is_main_process():
        return {}
    data = only_requested_splits(TASKS.get("classification").load_data(run.data_args), requested_stages(train_args))
    voter = voting_pipeline(members, list(data.labels), device=train_args.device,
                            batch_size=train_args.per_device_eval_batch_size)
    result = EnsembleResult(
        output_dir=out, data=data, members=members, probabilities=score_splits(voter, data),
        config_objects=(run.model_args, run.data_args, run.method_args, train_args, run.ensemble_args),
        base_model=run.model_args.model_name_or_path, method=run.method_args.method,
        threshold=float(getattr(run.data_args, "multi_label_threshold", 0.5)), recipe=run.recipe)
    metrics = write_ensemble(result)
    close_output_dir(out)  # every file is written: the folder reads as a finished run
    logger.info("Ensemble of %d members (%d trained now) written to %s", len(members), trained, out)
    push_run_from_args(train_args, out)  # --push_to_hub: the ensemble's folder with its members
    return {**metrics, "ensemble_members_trained": trained}
