"""The target's texts (dataset, text file, table column), its labelled test split, and the checks on bad input."""

from __future__ import annotations

import datasets
import pytest

from tlnlp.config import DataArgs
from tlnlp.data import DataError
from tlnlp.domain import DomainArgs, check_source, load_target
from tlnlp.tasks.classification.data import TaskData

SOURCE_LABELS = ["negative", "positive"]


def _args(**kwargs) -> DomainArgs:
    return DomainArgs(**{"a_distance_samples": 10, **kwargs})


def test_domain_args_refuse_bad_values_naming_the_field():
    with pytest.raises(ValueError, match="exactly one of --target_dataset .* neither is set"):
        DomainArgs()
    with pytest.raises(ValueError, match="both are set"):
        DomainArgs(target_dataset="bundled:movie_sentiment", target_text_file="t.txt")
    with pytest.raises(ValueError, match="domain_loss_weight=-0.5 must be >= 0"):
        DomainArgs(target_dataset="bundled:movie_sentiment", domain_loss_weight=-0.5)
    with pytest.raises(ValueError, match="target_max_samples=0 must be a positive number"):
        DomainArgs(target_dataset="bundled:movie_sentiment", target_max_samples=0)
    with pytest.raises(ValueError, match="a_distance_samples=5: give 0"):
        DomainArgs(target_dataset="bundled:movie_sentiment", a_distance_samples=5)
    with pytest.raises(ValueError, match="domain_dropout=1.0"):
        DomainArgs(target_dataset="bundled:movie_sentiment", domain_dropout=1.0)
    assert DomainArgs(target_dataset="bundled:movie_sentiment", a_distance_samples=0).target_name == (
        "bundled:movie_sentiment")


def test_a_labelled_bundled_target_gives_texts_held_out_texts_and_a_mapped_test_split():
    target = load_target(_args(target_dataset="bundled:movie_sentiment", target_max_samples=50,
                               target_max_predict_samples=30), DataArgs(dataset_name="bundled:amazon_sentiment"),
                         SOURCE_LABELS)
    assert len(target.texts) == 50 and len(target.held_out) > 500 and len(target.test) == 30
    assert target.labels == SOURCE_LABELS and target.note == ""
    assert not set(target.texts) & set(target.test["text"]) and not set(target.held_out) & set(target.test["text"])
    assert not set(target.texts) & set(target.held_out)
    # labels map onto the source's class ids by name: a source with the names the other way round flips them
    flipped = load_target(_args(target_dataset="bundled:movie_sentiment", target_max_samples=50,
                                target_max_predict_samples=30), DataArgs(dataset_name="bundled:amazon_sentiment"),
                          ["positive", "negative"])
    assert [1 - y for y in target.test["label"]] == flipped.test["label"]
    assert set(target.test["label"]) == {0, 1}


def test_a_labelled_target_has_a_mapped_validation_split_that_training_never_sees():
    data_args = DataArgs(dataset_name="bundled:amazon_sentiment", max_eval_samples=24)
    target = load_target(_args(target_dataset="bundled:movie_sentiment", target_max_samples=50), data_args,
                         SOURCE_LABELS)
    assert len(target.validation) == 24 and set(target.validation["label"]) <= {0, 1}  # --max_eval_samples rows
    assert target.validation_note == "" and target.describe()["validation_rows"] == 24
    assert not set(target.texts) & set(target.validation["text"])
    flipped = load_target(_args(target_dataset="bundled:movie_sentiment", target_max_samples=50), data_args,
                          ["positive", "negative"])
    assert [1 - y for y in target.validation["label"]] == flipped.validation["label"]


def test_targets_without_labels_the_source_has_have_no_validation_split_and_say_why(tmp_path):
    other = load_target(_args(target_dataset="bundled:trec6", target_max_samples=40),
                        DataArgs(dataset_name="bundled:amazon_sentiment"), SOURCE_LABELS)
    assert other.validation is None and "not among the source's" in other.validation_note
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(f"review number {i}" for i in range(120)), encoding="utf-8")
    text = load_target(_args(target_text_file=str(path)), DataArgs(dataset_name="bundled:amazon_sentiment"),
                       SOURCE_LABELS)
    assert text.validation is None and "text file" in text.validation_note


def test_a_target_with_other_labels_is_unlabelled_for_scoring():
    target = load_target(_args(target_dataset="bundled:trec6", target_max_samples=40),
                         DataArgs(dataset_name="bundled:amazon_sentiment"), SOURCE_LABELS)
    assert target.test is None and "not among the source's" in target.note and len(target.texts) == 40


def test_a_text_file_target_holds_out_a_share_of_its_lines(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(f"review number {i} of the new film" for i in range(100)) + "\n\n", encoding="utf-8")
    target = load_target(_args(target_text_file=str(path)), DataArgs(dataset_name="bundled:amazon_sentiment",
                                                                    validation_split_percentage=20.0),
                         SOURCE_LABELS)
    assert len(target.texts) == 80 and len(target.held_out) == 20 and target.test is None
    assert target.name == "reviews.txt" and "text file" in target.note
    assert target.describe()["unlabelled_texts"] == 80


def test_a_table_column_target(tmp_path):
    path = tmp_path / "target.csv"
    path.write_text("id,body\n" + "".join(f"{i},text {i} here\n" for i in range(120)), encoding="utf-8")
    target = load_target(_args(target_text_file=str(path), target_text_column="body"),
                         DataArgs(dataset_name="bundled:amazon_sentiment"), SOURCE_LABELS)
    assert len(target.texts) + len(target.held_out) == 120 and target.texts[0].startswith("text ")
    with pytest.raises(DataError, match="Target .*target.csv.*no column 'text' or 'sentence' for "
                                        "--target_text_column.*'body'"):
        load_target(_args(target_text_file=str(path)), DataArgs(dataset_name="bundled:amazon_sentiment"),
                    SOURCE_LABELS)


def test_empty_or_too_small_targets_are_refused_with_the_fix(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt.*holds no text"):
        load_target(_args(target_text_file=str(empty)), DataArgs(dataset_name="bundled:amazon_sentiment"),
                    SOURCE_LABELS)
    small = tmp_path / "small.txt"
    small.write_text("\n".join(f"line {i}" for i in range(30)), encoding="utf-8")
    with pytest.raises(DataError, match="3 held-out texts, too few for the A-distance.*--a_distance_samples 0"):
        load_target(_args(target_text_file=str(small)), DataArgs(dataset_name="bundled:amazon_sentiment"),
                    SOURCE_LABELS)
    found = load_target(_args(target_text_file=str(small), a_distance_samples=0),
                        DataArgs(dataset_name="bundled:amazon_sentiment"), SOURCE_LABELS)
    assert len(found.texts) == 27
    with pytest.raises(DataError, match="Target missing.txt: .*does not exist"):
        load_target(_args(target_text_file="missing.txt"), DataArgs(dataset_name="bundled:amazon_sentiment"),
                    SOURCE_LABELS)


def _task_data(multi_label: bool = False, pair: bool = False) -> TaskData:
    columns = {"text": ["a", "b"], "label": [[0], [1]] if multi_label else [0, 1]}
    if pair:
        columns["text_pair"] = ["c", "d"]
    return TaskData(splits=datasets.DatasetDict({"train": datasets.Dataset.from_dict(columns)}),
                    labels=["x", "y"], multi_label=multi_label, name="mine.csv", fingerprint="")


def test_check_source_refuses_multi_label_and_pairs():
    check_source(_task_data())
    with pytest.raises(DataError, match="mine.csv is multi-label.*single-label classifier.*Fix"):
        check_source(_task_data(multi_label=True))
    with pytest.raises(DataError, match="text pairs.*Fix: drop --text_pair_column"):
        check_source(_task_data(pair=True))
