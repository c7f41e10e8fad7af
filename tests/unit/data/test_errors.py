"""Every data problem is a DataError that names the split, row, column and value, and says how to fix it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tlnlp.data import DataError
from tlnlp.tasks import load_task_data

from .helpers import make_args, sentiment_rows, to_csv, to_jsonl


def _error(**kwargs) -> str:
    with pytest.raises(DataError) as err:
        load_task_data(make_args(**kwargs))
    return str(err.value)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_missing_label_column_suggests_the_closest(write):
    rows = [{"text": r["text"], "labels": r["label"], "id": i} for i, r in enumerate(sentiment_rows())]
    message = _error(train_file=write("train.csv", to_csv(rows)))
    assert "train data (train.csv)" in message and "'label'" in message and "--label_column" in message
    assert "Did you mean 'labels'?" in message and "'text', 'labels', 'id'" in message
    assert "Fix: pass --label_column labels" in message


def test_missing_named_text_column(write):
    message = _error(train_file=write("train.jsonl", to_jsonl(sentiment_rows())), text_column="txt")
    assert "'txt'" in message and "Did you mean 'text'?" in message and "--text_column" in message


def test_no_text_or_sentence_column(write):
    rows = [{"review": r["text"], "label": r["label"]} for r in sentiment_rows()]
    message = _error(train_file=write("train.csv", to_csv(rows)))
    assert "'text' or 'sentence'" in message and "'review'" in message and "--text_column" in message


def test_missing_column_in_validation_file_names_that_split(write):
    train = write("train.csv", to_csv(sentiment_rows()))
    val = write("dev.csv", to_csv([{"txt": "a", "label": "positive"}]))
    message = _error(train_file=train, validation_file=val)
    assert message.startswith("validation data (dev.csv)") and "'txt'" in message


def test_empty_text_names_split_line_and_column(write):
    content = to_csv(sentiment_rows()) + '"",positive\n"   ",negative\n'
    message = _error(train_file=write("train.csv", content))
    # 1 header line + 24 rows: the empty texts are on lines 26 and 27
    assert "train data (train.csv), lines 26, 27, column 'text'" in message
    assert "empty" in message and "Fix:" in message


def test_null_text_in_jsonl_and_parquet(write, tmp_path):
    rows = sentiment_rows()
    rows[4]["text"] = None
    message = _error(train_file=write("train.jsonl", to_jsonl(rows)))
    assert "train data (train.jsonl), line 5, column 'text'" in message and "null" in message
    path = tmp_path / "train.parquet"
    pd.DataFrame(rows).to_parquet(path)
    message = _error(train_file=str(path))
    assert "train data (train.parquet), row 5, column 'text'" in message and "null" in message


def test_non_string_text_is_refused(write):
    rows = sentiment_rows()
    rows[0]["text"] = 12
    message = _error(train_file=write("train.jsonl", to_jsonl(rows)))
    assert "line 1, column 'text'" in message and "expected text" in message and "12" in message


def test_missing_label(write):
    rows = sentiment_rows()
    rows[2]["label"] = None
    message = _error(train_file=write("train.jsonl", to_jsonl(rows)))
    assert "line 3, column 'label'" in message and "missing" in message


def test_fractional_label_looks_like_regression(write):
    rows = [{"text": f"t{i}", "label": [0.25, 1.0][i % 2]} for i in range(10)]
    message = _error(train_file=write("train.jsonl", to_jsonl(rows)))
    assert "line 1, column 'label'" in message and "0.25" in message and "regression" in message


def test_label_unseen_in_training(write):
    train = write("train.csv", to_csv(sentiment_rows()))
    test_rows = [{"text": "meh", "label": "neutral"}, {"text": "fine", "label": "positive"},
                 {"text": "so so", "label": "neutral"}]
    message = _error(train_file=train, test_file=write("test.csv", to_csv(test_rows)))
    assert "test data (test.csv), lines 2, 4, column 'label'" in message
    assert "'neutral'" in message and "never occur in the training data" in message
    assert "negative, positive" in message and "Fix:" in message


def test_only_one_class_in_training(write):
    rows = [{"text": f"text {i}", "label": "positive"} for i in range(10)]
    message = _error(train_file=write("train.csv", to_csv(rows)))
    assert "train data (train.csv)" in message and "at least two classes" in message
    assert "'positive'" in message


def test_file_not_found(tmp_path):
    message = _error(train_file=str(tmp_path / "nope.csv"))
    assert "nope.csv" in message and "does not exist" in message and "--train_file" in message


def test_unsupported_extension(write):
    message = _error(train_file=write("train.xlsx", "x"))
    assert "'.xlsx'" in message and ".csv, .tsv, .json, .jsonl, .parquet" in message


def test_malformed_json_line(write):
    content = to_jsonl(sentiment_rows()[:3]) + '{"text": "broken", "label": "positive"\n' + to_jsonl(
        sentiment_rows()[3:])
    message = _error(train_file=write("train.jsonl", content))
    assert "train data (train.jsonl), line 4: malformed JSON" in message and "broken" in message
    assert "Fix:" in message


def test_malformed_json_array_element(write):
    good = ",\n".join(json.dumps(r) for r in sentiment_rows()[:5])
    text = "[\n" + good + ',\n{"text": "broken", "label": "negative",}\n]\n'  # trailing comma on line 7
    message = _error(train_file=write("train.json", text))
    assert "train data (train.json), line 7: malformed JSON" in message and "broken" in message


def test_json_lines_in_a_json_file(write):
    content = to_jsonl(sentiment_rows()[:2]) + "not json\n"
    message = _error(train_file=write("train.json", content))
    assert "line 3: malformed JSON" in message


def test_non_utf8_file(write):
    content = to_csv(sentiment_rows()).encode("utf-8") + "café,positive\n".encode("cp1252")
    message = _error(train_file=write("train.csv", content))
    assert "not UTF-8" in message and "line 26" in message and "byte offset" in message
    assert "iconv" in message and "UTF-8" in message


def test_wrong_number_of_csv_fields(write):
    content = to_csv(sentiment_rows()) + "unquoted, with a comma,positive\n"
    message = _error(train_file=write("train.csv", content))
    assert "line 26" in message and "3 fields" in message and "quote" in message


def test_validation_file_with_a_hub_dataset_is_refused(write):
    message = _error(dataset_name="someone/data", validation_file=write("v.csv", "text,label\n"))
    assert "--validation_file" in message and "--train_file" in message


def test_unknown_task():
    with pytest.raises(DataError, match="classification"):
        load_task_data(make_args(dataset_name="bundled:sms_spam"), task="qa")


def test_no_file_is_written(write, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    _error(train_file=write("train.csv", to_csv([{"txt": "a", "label": "b"}])))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before + ["train.csv"])
