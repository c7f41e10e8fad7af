"""Which stages a run performs: ``--do_train``, ``--do_eval`` and ``--do_predict`` as the HF example scripts read them.

Given none of the three, a tlnlp recipe trains, scores the validation split and predicts the test split, as it
always has. Given any of them, it does exactly the stages given: ``--do_eval`` alone evaluates a trained model
(``--model_name_or_path`` a run's folder) and trains nothing; ``--do_train`` alone trains and saves without the
final scoring of the validation and test splits. The classification and question-answering recipes take every
combination; the recipes that always train refuse a run without ``--do_train``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import datasets

from tlnlp.errors import UserError

__all__ = ["RunStages", "StageError", "only_requested_splits", "refuse_evaluation_only", "refuse_long_text_chunk",
           "requested_stages"]


class StageError(UserError, ValueError):
    """The stage flags ask for what this recipe cannot do (e.g. evaluation-only in a recipe that always trains)."""


@dataclass(frozen=True)
class RunStages:
    """The stages of one run.

    Attributes:
        train: Train (and save) a model.
        evaluate: Score the validation split at the end (``eval_results.json``).
        predict: Predict and score the test split (``test_results.json``, predictions).
    """

    train: bool = True
    evaluate: bool = True
    predict: bool = True

    @property
    def any(self) -> bool:
        """Whether there is anything to do."""
        return self.train or self.evaluate or self.predict


def requested_stages(train_args: Any) -> RunStages:
    """The stages the flags ask for: every stage when none of the three flags was given, else those given true.

    Args:
        train_args: Parsed ``TrainingArguments`` (from :func:`tlnlp.config.parse_args`, which records the flags
            given on the command line or in the config file).

    Raises:
        StageError: the flags were given, but all false.
    """
    given = getattr(train_args, "_tlnlp_stages", {})
    if not given:
        return RunStages()
    stages = RunStages(train=given.get("do_train", False), evaluate=given.get("do_eval", False),
                       predict=given.get("do_predict", False))
    if not stages.any:
        raise StageError(f"{', '.join(f'{k}={v}' for k, v in given.items())}: nothing to do. Give --do_train, "
                         "--do_eval or --do_predict (or none of them, to train, evaluate and predict).")
    return stages


def refuse_evaluation_only(train_args: Any, recipe: str) -> RunStages:
    """For a recipe that always trains: the requested stages, refusing a run that asks not to train.

    Raises:
        StageError: ``--do_train`` is off; the message points to the classification recipe's evaluation-only run.
    """
    stages = requested_stages(train_args)
    if not stages.train:
        raise StageError(f"do_train=False: the {recipe} recipe always trains. To score a trained model without "
                         "training, run `tlnlp train classification --model_name_or_path <run folder> --do_eval "
                         "--do_predict --output_dir <new folder>` (question_answering takes the same flags).")
    return stages


def only_requested_splits(splits: Any, stages: RunStages) -> Any:
    """``splits`` without the validation split when ``--do_eval`` is off, nor the test split when ``--do_predict`` is.

    Args:
        splits: A ``DatasetDict`` (e.g. the tokenised splits handed to the final scoring), or a task's data object
            whose ``splits`` attribute is one (a copy with fewer splits is returned; the original is unchanged).
        stages: The requested stages.
    """
    drop = {name for name, wanted in (("validation", stages.evaluate), ("test", stages.predict)) if not wanted}
    if isinstance(splits, datasets.DatasetDict):
        return datasets.DatasetDict({k: v for k, v in splits.items() if k not in drop})
    if not drop & set(splits.splits):
        return splits
    return dataclasses.replace(splits, splits=only_requested_splits(splits.splits, stages))


def refuse_long_text_chunk(data_args: Any, recipe: str) -> None:
    """For a recipe that scores whole rows only: refuse ``--long_text chunk`` before any work.

    Raises:
        StageError: ``long_text`` is ``chunk``; the message points to the classification recipe, which windows texts.
    """
    if getattr(data_args, "long_text", "truncate") == "chunk":
        raise StageError(f"long_text='chunk': the {recipe} recipe scores rows cut to max_seq_length="
                         f"{getattr(data_args, 'max_seq_length', '?')}. Use --long_text truncate here, or the "
                         "classification recipe, which classifies long texts by sliding windows.")
