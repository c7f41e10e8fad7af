"""Unlabelled text for LM adaptation: plain text files, any table's text column, bundled corpora, task texts."""

from __future__ import annotations

import pytest

from tlnlp.config import DataArgs
from tlnlp.data import DataError
from tlnlp.data.text import load_text_data
from tlnlp.tasks.language_modeling.data import task_texts


def test_plain_text_file_one_text_per_line_with_a_seeded_held_out_split(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"line  number {i}" for i in range(40)) + "\n\n   \n", encoding="utf-8")
    data = load_text_data(DataArgs(train_file=str(path), validation_split_percentage=10))
    assert len(data.train) == 36 and len(data.validation) == 4
    assert not set(data.train) & set(data.validation)
    assert "line number 0" in data.train + data.validation  # whitespace normalised, blank lines dropped
    again = load_text_data(DataArgs(train_file=str(path), validation_split_percentage=10))
    assert again.validation == data.validation and again.fingerprint == data.fingerprint


def test_table_text_column_without_labels_and_a_validation_file(tmp_path):
    (tmp_path / "train.csv").write_text("id,body\n1,first text\n2,second text\n3,third\n", encoding="utf-8")
    (tmp_path / "dev.jsonl").write_text('{"body": "held out"}\n', encoding="utf-8")
    data = load_text_data(DataArgs(train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "dev.jsonl"),
                                   text_column="body"))
    assert data.train == ["first text", "second text", "third"] and data.validation == ["held out"]
    with pytest.raises(DataError, match="--text_column"):
        load_text_data(DataArgs(train_file=str(tmp_path / "train.csv"), text_column="content"))


def test_bundled_corpus_texts_and_limits():
    data = load_text_data(DataArgs(dataset_name="bundled:trec6", max_train_samples=50, max_eval_samples=10))
    assert len(data.train) == 50 and len(data.validation) == 10
    assert all(isinstance(t, str) and t for t in data.train)


def test_task_texts_keep_the_unlabelled_remainder():
    args = DataArgs(dataset_name="bundled:trec6", train_samples_per_class=5)
    texts = task_texts(args)
    assert len(texts.train) > 4000  # every training text, not only the 30 labelled ones


def test_errors_name_the_problem(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no text"):
        load_text_data(DataArgs(train_file=str(empty)))
    with pytest.raises(DataError, match="does not exist"):
        load_text_data(DataArgs(train_file=str(tmp_path / "missing.txt")))
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_text_data(DataArgs(train_file=str(bad)))
    one = tmp_path / "one.txt"
    one.write_text("only one line\n", encoding="utf-8")
    with pytest.raises(DataError, match="nothing to hold out"):
        load_text_data(DataArgs(train_file=str(one)))
