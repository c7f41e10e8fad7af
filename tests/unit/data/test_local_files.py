"""Local files: every format, column mapping, integer and multi-label labels, text pairs, splits."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tlnlp.tasks import load_task_data

from .helpers import make_args, sentiment_rows, to_csv, to_jsonl


def _check_sentiment(data, n_rows: int = 24) -> None:
    assert data.labels == ["negative", "positive"] and not data.multi_label
    assert set(data.splits) == {"train", "validation", "test"}
    assert sum(len(d) for d in data.splits.values()) == n_rows
    assert data.splits["train"].column_names == ["text", "label"]
    train = data.splits["train"]
    for text, label in zip(train["text"], train["label"], strict=True):
        assert data.labels[label] == ("positive" if any(text.startswith(p) for p in (
            "great", "loved", "wonderful", "a joy", "superb", "brilliant", "so good", "fantastic", "moving",
            "a delight", "terrific", "beautiful")) else "negative")


@pytest.mark.parametrize(
    "fmt", ["csv", "tsv", "json_lines", "json_array", "json_columns", "jsonl", "parquet"])
def test_every_format_loads_and_splits(write, tmp_path, fmt):
    rows = sentiment_rows()
    if fmt == "csv":
        path = write("train.csv", to_csv(rows))
    elif fmt == "tsv":
        path = write("train.tsv", to_csv(rows, sep="\t"))
    elif fmt == "json_lines":
        path = write("train.json", to_jsonl(rows))
    elif fmt == "json_array":
        path = write("train.json", json.dumps(rows, indent=2))
    elif fmt == "json_columns":
        path = write("train.json", json.dumps({k: [r[k] for r in rows] for k in rows[0]}, indent=1))
    elif fmt == "jsonl":
        path = write("train.jsonl", to_jsonl(rows))
    else:
        path = str(tmp_path / "train.parquet")
        pd.DataFrame(rows).to_parquet(path)
    data = load_task_data(make_args(train_file=path))
    _check_sentiment(data)
    assert data.name == path.rsplit("/", 1)[-1] and data.version is None and data.hub_dataset_id is None
    assert {s: len(d) for s, d in data.splits.items()} == {"train": 20, "validation": 2, "test": 2}
    for split in ("validation", "test"):  # stratified: one of each class
        assert sorted(data.splits[split]["label"]) == [0, 1]


def test_same_args_same_splits_other_seed_other_splits(write):
    path = write("train.csv", to_csv(sentiment_rows(20)))
    first, second = (load_task_data(make_args(train_file=path)) for _ in range(2))
    assert first.fingerprint == second.fingerprint and len(first.fingerprint) == 64
    assert first.splits["test"]["text"] == second.splits["test"]["text"]
    other = load_task_data(make_args(train_file=path, split_seed=1))
    assert other.fingerprint != first.fingerprint
    assert load_task_data(make_args(train_file=path), seed=1).fingerprint == other.fingerprint


def test_split_percentages(write):
    path = write("train.csv", to_csv(sentiment_rows(50)))
    data = load_task_data(make_args(train_file=path, validation_split_percentage=20, test_split_percentage=0))
    assert {s: len(d) for s, d in data.splits.items()} == {"train": 80, "validation": 20}
    texts = [set(d["text"]) for d in data.splits.values()]
    assert not texts[0] & texts[1]


def test_separate_files_keep_their_rows_and_order(write):
    rows = sentiment_rows()
    train = write("train.csv", to_csv(rows[:16]))
    val = write("dev.jsonl", to_jsonl(rows[16:20]))
    test = write("test.csv", to_csv(rows[20:]))
    data = load_task_data(make_args(train_file=train, validation_file=val, test_file=test))
    assert data.splits["train"]["text"] == [r["text"] for r in rows[:16]]
    assert data.splits["validation"]["text"] == [r["text"] for r in rows[16:20]]
    assert data.splits["test"]["text"] == [r["text"] for r in rows[20:]]
    assert "dev.jsonl" in data.description


def test_missing_validation_is_carved_from_train_but_not_test(write):
    rows = sentiment_rows(20)
    train, test = write("train.csv", to_csv(rows[:30])), write("test.csv", to_csv(rows[30:]))
    data = load_task_data(make_args(train_file=train, test_file=test))
    assert {s: len(d) for s, d in data.splits.items()} == {"train": 27, "validation": 3, "test": 10}
    with_val = load_task_data(make_args(train_file=train, validation_file=test))
    assert set(with_val.splits) == {"train", "validation"}


def test_sentence_column_and_custom_columns(write):
    rows = [{"sentence": r["text"], "y": r["label"]} for r in sentiment_rows()]
    path = write("train.csv", to_csv(rows))
    data = load_task_data(make_args(train_file=path, label_column="y"))
    _check_sentiment(data)
    renamed = [{"review": r["sentence"], "label": r["y"]} for r in rows]
    data = load_task_data(make_args(train_file=write("r.jsonl", to_jsonl(renamed)), text_column="review"))
    _check_sentiment(data)


def test_integer_labels_are_sorted_numerically(write):
    rows = [{"text": f"row {i}", "label": [10, 2, 1][i % 3]} for i in range(30)]
    for name, content in (("a.csv", to_csv(rows)), ("a.jsonl", to_jsonl(rows))):
        data = load_task_data(make_args(train_file=write(name, content)))
        assert data.labels == ["1", "2", "10"]
        train = data.splits["train"]
        by_text = {r["text"]: str(r["label"]) for r in rows}
        pairs = zip(train["text"], train["label"], strict=True)
        assert all(data.labels[label] == by_text[text] for text, label in pairs)


def test_multi_label_from_jsonl_lists(write):
    rows = [{"text": f"text {i}", "label": [["sports"], ["politics", "sports"], [], ["tech"]][i % 4]}
            for i in range(40)]
    data = load_task_data(make_args(train_file=write("m.jsonl", to_jsonl(rows))))
    assert data.multi_label and data.labels == ["politics", "sports", "tech"]
    by_text = {r["text"]: sorted(r["label"]) for r in rows}
    for split in data.splits.values():
        for text, ids in zip(split["text"], split["label"], strict=True):
            assert [data.labels[i] for i in ids] == by_text[text]


def test_multi_label_from_csv_with_separator(write):
    rows = [{"text": f"text {i}", "label": ["a|b", "b", "c | a", ""][i % 4]} for i in range(40)]
    data = load_task_data(make_args(train_file=write("m.csv", to_csv(rows)), label_separator="|"))
    assert data.multi_label and data.labels == ["a", "b", "c"]
    train = data.splits["train"]
    expected = {"a|b": ["a", "b"], "b": ["b"], "c | a": ["a", "c"], "": []}
    by_text = {r["text"]: expected[r["label"]] for r in rows}
    pairs = zip(train["text"], train["label"], strict=True)
    assert all([data.labels[i] for i in ids] == by_text[t] for t, ids in pairs)


def test_text_pairs(write):
    rows = [{"premise": f"premise {i}", "hypothesis": f"hypothesis {i}", "label": ["yes", "no"][i % 2]}
            for i in range(20)]
    data = load_task_data(make_args(train_file=write("p.csv", to_csv(rows)), text_column="premise",
                                    text_pair_column="hypothesis"))
    assert data.has_text_pair
    train = data.splits["train"]
    assert train.column_names == ["text", "text_pair", "label"]
    pairs = zip(train["text"], train["text_pair"], strict=True)
    assert all(p == t.replace("premise", "hypothesis") for t, p in pairs)


def test_csv_keeps_na_like_texts_and_quoted_newlines(write):
    rows = sentiment_rows()
    content = to_csv(rows) + '"NA",positive\n"two\nlines",negative\n'
    data = load_task_data(make_args(train_file=write("t.csv", content)))
    texts = {t for d in data.splits.values() for t in d["text"]}
    assert "NA" in texts and "two\nlines" in texts


def test_bom_and_crlf_are_accepted(write):
    content = to_csv(sentiment_rows()).replace("\n", "\r\n").encode("utf-8")
    data = load_task_data(make_args(train_file=write("w.csv", b"\xef\xbb\xbf" + content)))
    _check_sentiment(data)
    assert not any(t.endswith("\r") for t in data.splits["train"]["text"])


def test_overlap_between_given_splits_is_warned(write, caplog):
    rows = sentiment_rows()
    train = write("train.csv", to_csv(rows))
    test = write("test.csv", to_csv(rows[:4]))
    with caplog.at_level("WARNING", logger="tlnlp.data"):
        load_task_data(make_args(train_file=train, test_file=test, validation_split_percentage=0))
    assert "4 texts appear in both train and test" in caplog.text
