"""--do_train/--do_eval/--do_predict: every stage unless one is given, then exactly those given."""

from __future__ import annotations

import datasets
import pytest

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.training import RunStages, StageError, only_requested_splits, refuse_evaluation_only, requested_stages

BASE = ["--dataset_name", "bundled:movie_sentiment", "--output_dir", "out"]


def _train_args(*flags: str):
    return parse_args(ModelArgs, DataArgs, TrainingArgs, args=[*BASE, *flags])[2]


@pytest.mark.parametrize(("flags", "expected"), [
    ((), RunStages(True, True, True)),
    (("--do_eval",), RunStages(False, True, False)),
    (("--do_eval", "--do_predict"), RunStages(False, True, True)),
    (("--do_train",), RunStages(True, False, False)),
    (("--do_train", "--do_predict", "true"), RunStages(True, False, True)),
])
def test_stages_follow_the_flags_given(flags, expected):
    assert requested_stages(_train_args(*flags)) == expected


def test_all_stages_off_is_refused_and_a_training_recipe_refuses_evaluation_only():
    with pytest.raises(StageError, match="nothing to do"):
        requested_stages(_train_args("--do_train", "false"))
    with pytest.raises(StageError, match="the ulmfit recipe always trains.*tlnlp train classification"):
        refuse_evaluation_only(_train_args("--do_eval"), "ulmfit")
    assert refuse_evaluation_only(_train_args(), "ulmfit") == RunStages()


def test_unrequested_splits_are_dropped_from_the_final_scoring():
    splits = datasets.DatasetDict({name: datasets.Dataset.from_dict({"text": ["a"], "label": [0]})
                                   for name in ("train", "validation", "test")})
    assert list(only_requested_splits(splits, RunStages(True, False, True))) == ["train", "test"]
    assert list(only_requested_splits(splits, RunStages(True, True, False))) == ["train", "validation"]
    assert list(splits) == ["train", "validation", "test"], "the original is unchanged"


def test_recipes_that_score_whole_rows_refuse_chunked_long_texts():
    from tlnlp.training import refuse_long_text_chunk

    _, data, _ = parse_args(ModelArgs, DataArgs, TrainingArgs, args=[*BASE, "--long_text", "chunk"])
    with pytest.raises(StageError, match="the ulmfit recipe scores rows cut to max_seq_length=128"):
        refuse_long_text_chunk(data, "ulmfit")
    refuse_long_text_chunk(parse_args(ModelArgs, DataArgs, TrainingArgs, args=BASE)[1], "ulmfit")
