"""Ensembles of seeds (soft voting) and checkpoint averaging, for the classification recipe and the ladder.

=================  ==================================================================================================
module             what it holds
=================  ==================================================================================================
``args``           :class:`EnsembleArgs`: ``--ensemble_seeds`` and ``--average_checkpoints``
``averaging``      the last K checkpoints' weights averaged into the Trainer's model
``members``        members' seeds, folders and training arguments; which of them are finished
``outputs``        the members' pipelines voting on the splits; the ensemble folder's files
``card``           the ensemble's card, with its members' results
``runner``         :func:`run_ensemble`
=================  ==================================================================================================

An ensemble's folder loads with :func:`tlnlp.load_pipeline` (:class:`tlnlp.inference.SoftVotingPipeline`).
"""

from tlnlp.ensemble.args import EnsembleArgs, EnsembleError
from tlnlp.ensemble.averaging import (
    AveragedCheckpoints,
    average_checkpoints_if_asked,
    average_last_checkpoints,
    average_tensors,
    check_checkpoint_averaging,
    checkpoint_folders,
    checkpoint_weights,
    expected_checkpoints,
)
from tlnlp.ensemble.card import ensemble_card, members_table
from tlnlp.ensemble.members import (
    MEMBERS_FOLDER,
    Member,
    changed_settings,
    is_finished,
    member_training_args,
    plan_members,
)
from tlnlp.ensemble.outputs import (
    COMBINE,
    EnsembleResult,
    member_metrics,
    score_splits,
    split_inputs,
    voting_pipeline,
    write_ensemble,
)
from tlnlp.ensemble.runner import EnsembleRun, check_ensemble, prepare_ensemble_dir, run_ensemble

__all__ = [
    "COMBINE",
    "MEMBERS_FOLDER",
    "AveragedCheckpoints",
    "EnsembleArgs",
    "EnsembleError",
    "EnsembleResult",
    "EnsembleRun",
    "Member",
    "average_checkpoints_if_asked",
    "average_last_checkpoints",
    "average_tensors",
    "changed_settings",
    "check_checkpoint_averaging",
    "check_ensemble",
    "checkpoint_folders",
    "checkpoint_weights",
    "ensemble_card",
    "expected_checkpoints",
    "is_finished",
    "member_metrics",
    "member_training_args",
    "members_table",
    "plan_members",
    "prepare_ensemble_dir",
    "run_ensemble",
    "score_splits",
    "split_inputs",
    "voting_pipeline",
    "write_ensemble",
]
