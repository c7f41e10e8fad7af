"""Question-answering data: SQuAD JSON, flat files, Hub shape, checks with ids, repair, splits by passage."""

from __future__ import annotations

import json

import datasets
import huggingface_hub
import pandas as pd
import pytest
from huggingface_hub import constants

from tlnlp.config import DataArgs
from tlnlp.config.qa_args import QAArgs
from tlnlp.data import DataError
from tlnlp.tasks.qa.data import load_qa_data

CONTEXT = "Karl Drais built the running machine in 1817. Drais lived in Mannheim."


def _row(qid, question="Who built it?", context=CONTEXT, text="Karl Drais", start=0):
    answers = {"text": [text], "answer_start": [start]} if text else {"text": [], "answer_start": []}
    return {"id": qid, "question": question, "context": context, "answers": answers}


def _squad(rows, version="v2.0"):
    paragraphs = {}
    for r in rows:
        qa = {"id": r["id"], "question": r["question"],
              "answers": [{"text": t, "answer_start": s} for t, s in zip(r["answers"]["text"],
                                                                           r["answers"]["answer_start"], strict=True)]}
        if not r["answers"]["text"]:
            qa["is_impossible"] = True
        paragraphs.setdefault(r["context"], []).append(qa)
    return json.dumps({"version": version, "data": [{"title": "T", "paragraphs": [
        {"context": c, "qas": q} for c, q in paragraphs.items()]}]}, indent=1)


def _load(**kwargs):
    qa = {k: kwargs.pop(k) for k in list(kwargs) if k in QAArgs.__dataclass_fields__}
    return load_qa_data(DataArgs(**kwargs), QAArgs(**qa))


def test_nested_squad_json_with_unanswerable_questions(write):
    rows = [_row("a"), _row("b", "When?", text="1817", start=CONTEXT.index("1817")), _row("c", "Why?", text=None)]
    path = write("train.json", _squad(rows))
    val = write("val.json", _squad([_row("v", "Where did Drais live?", text="Mannheim",
                                         start=CONTEXT.index("Mannheim"))]))
    data = _load(train_file=path, validation_file=val, version_2_with_negative=True)
    train = data.splits["train"]
    assert train["id"] == ["a", "b", "c"]
    assert train[1]["answers"] == {"text": ["1817"], "answer_start": [CONTEXT.index("1817")]}
    assert train[2]["answers"] == {"text": [], "answer_start": []}
    assert data.unanswerable("train") == 1 and len(data.fingerprint) == 64
    with pytest.raises(DataError, match="version_2_with_negative"):
        _load(train_file=path, validation_file=val)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_flat_files_with_column_mapping(write, tmp_path, fmt):
    rows = [{"qid": f"q{i}", "query": "When?", "passage": f"Built in {1800 + i}.",
             "gold": {"text": [str(1800 + i)], "answer_start": [9]}} for i in range(4)]
    if fmt == "csv":
        frame = pd.DataFrame([{**r, "gold": json.dumps(r["gold"])} for r in rows])
        path = tmp_path / "train.csv"
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        path = write("train.jsonl", "\n".join(json.dumps(r) for r in rows))
    else:
        path = tmp_path / "train.parquet"
        pd.DataFrame(rows).to_parquet(path)
    data = _load(train_file=str(path), validation_file=str(path), id_column="qid", question_column="query",
                 context_column="passage", answers_column="gold")
    first = data.splits["train"][0]
    assert first["id"] == "q0" and first["context"] == "Built in 1800."
    assert first["answers"] == {"text": ["1800"], "answer_start": [9]}


def test_missing_column_names_the_flag(write):
    path = write("train.jsonl", json.dumps({"id": "a", "questions": "x", "context": "y", "answers": []}))
    with pytest.raises(DataError, match="--question_column.*Did you mean 'questions'.*--question_column questions"):
        _load(train_file=path)


def test_wrong_answer_start_lists_the_ids_and_can_be_repaired(write, caplog):
    later = CONTEXT.index("Drais lived")
    rows = [_row("ok"), _row("off1", text="Drais", start=1), _row("off2", text="Drais", start=later + 3),
            _row("off3", text="1817", start=3)]
    path = write("train.jsonl", "\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError) as err:
        _load(train_file=path, validation_file=path)
    message = str(err.value)
    assert "'off1', 'off2', 'off3'" in message and "'ok'" not in message
    assert "--repair_answer_starts" in message and "answer_start=1 reads 'arl D'" in message
    data = _load(train_file=path, validation_file=path, repair_answer_starts=True)
    starts = {r["id"]: r["answers"]["answer_start"][0] for r in data.splits["train"]}
    assert starts == {"ok": 0, "off1": 5, "off2": later, "off3": CONTEXT.index("1817")}  # nearest occurrence
    assert data.repaired == 6  # three in train, the same three in validation
    assert "repaired 3 answer_start" in caplog.text


def test_answer_absent_from_context_cannot_be_repaired(write):
    path = write("train.jsonl", json.dumps(_row("gone", text="Berlin", start=0)))
    with pytest.raises(DataError, match="'gone'.*does not occur"):
        _load(train_file=path, validation_file=path, repair_answer_starts=True)


@pytest.mark.parametrize(("field", "value"), [("question", "  "), ("context", ""), ("question", None)])
def test_empty_question_or_context_is_an_error(write, field, value):
    rows = [_row("a"), {**_row("b"), field: value}]
    path = write("train.jsonl", "\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match=rf"line 2, column '{field}'"):
        _load(train_file=path, validation_file=path)


@pytest.mark.parametrize("answers", [{"text": ["x"]}, {"text": ["Karl"], "answer_start": [-1]},
                                     {"text": [""], "answer_start": [0]}, "not json", None])
def test_malformed_answers(write, answers):
    path = write("train.jsonl", json.dumps({**_row("bad"), "answers": answers}))
    with pytest.raises(DataError, match="answers of question\\(s\\) 'bad'"):
        _load(train_file=path, validation_file=path)


def test_duplicate_ids(write):
    path = write("train.jsonl", "\n".join(json.dumps(_row("same")) for _ in range(2)))
    with pytest.raises(DataError, match="duplicate ids 'same'"):
        _load(train_file=path, validation_file=path)


def test_classification_flags_are_refused(write):
    path = write("train.jsonl", json.dumps(_row("a")))
    with pytest.raises(DataError, match="--label_column"):
        _load(train_file=path, label_column="label")


def test_training_only_is_split_by_passage(write):
    rows = [_row(f"p{p}-{k}", context=f"Passage {p}: Karl Drais built it.", start=len(f"Passage {p}: "))
            for p in range(20) for k in range(3)]
    path = write("train.jsonl", "\n".join(json.dumps(r) for r in rows))
    data = _load(train_file=path, validation_split_percentage=20, test_split_percentage=10)
    contexts = {s: set(d["context"]) for s, d in data.splits.items()}
    assert {s: len(c) for s, c in contexts.items()} == {"train": 14, "validation": 4, "test": 2}
    assert not (contexts["train"] & contexts["validation"]) and not (contexts["train"] & contexts["test"])
    again = _load(train_file=path, validation_split_percentage=20, test_split_percentage=10)
    assert again.fingerprint == data.fingerprint


def test_hub_squad_shape(monkeypatch):
    """squad / squad_v2 from the Hub: the answers feature is a dict of lists, splits train and validation."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", lambda self, *a, **k: None)
    rows = [_row("a"), _row("b", text=None)]
    hub = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                                "validation": datasets.Dataset.from_list(rows[:1])})
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None, **k: hub)
    data = _load(dataset_name="squad_v2", version_2_with_negative=True)
    assert data.hub_dataset_id == "squad_v2" and set(data.splits) == {"train", "validation"}
    assert data.splits["train"][1]["answers"]["text"] == []


def test_hub_offline_lists_the_bundled_qa_data(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="unreachable.*bundled:qa_tlnlp"):
        _load(dataset_name="squad")


def test_samples_are_nested(write):
    rows = [_row(f"q{i}") for i in range(30)]
    path = write("train.jsonl", "\n".join(json.dumps(r) for r in rows))
    small = _load(train_file=path, validation_file=path, max_train_samples=5)
    large = _load(train_file=path, validation_file=path, max_train_samples=15)
    assert set(small.splits["train"]["id"]) < set(large.splits["train"]["id"])
