"""tokenize_classification: truncation without padding, labels and multi-hot targets, text pairs."""

from __future__ import annotations

import datasets
import pytest

from tlnlp.tasks.classification.data import TaskData, data_fingerprint
from tlnlp.tasks.classification.tokenize import tokenize_classification


def _task(columns: dict, labels: list[str], multi_label: bool = False) -> TaskData:
    label = datasets.ClassLabel(names=labels)
    spec = {"text": datasets.Value("string")}
    if "text_pair" in columns:
        spec["text_pair"] = datasets.Value("string")
    spec["label"] = datasets.List(label) if multi_label else label
    split = datasets.Dataset.from_dict(columns, features=datasets.Features(spec))
    splits = datasets.DatasetDict({"train": split, "test": split})
    return TaskData(splits=splits, labels=labels, multi_label=multi_label, name="toy",
                    fingerprint=data_fingerprint(splits, labels, multi_label))


def test_single_label_truncates_without_padding(tokenizer):
    texts = ["short", "a somewhat longer sentence with several more words in it", "mid length text"]
    data = _task({"text": texts, "label": [0, 1, 0]}, ["neg", "pos"])
    out = tokenize_classification(data, tokenizer, max_seq_length=8)
    assert set(out) == {"train", "test"}
    train = out["train"]
    assert set(train.column_names) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    lengths = [len(ids) for ids in train["input_ids"]]
    assert lengths[0] == 3 and lengths[1] == 8 and len(set(lengths)) == 3  # no padding, truncated at 8
    assert all(tokenizer.pad_token_id not in ids for ids in train["input_ids"])
    assert all(sum(mask) == len(mask) for mask in train["attention_mask"])
    assert train["labels"] == [0, 1, 0]
    assert train["input_ids"][1][-1] == tokenizer.sep_token_id


def test_multi_label_gives_multi_hot_floats(tokenizer):
    data = _task({"text": ["a", "b", "c"], "label": [[0, 2], [], [1]]}, ["x", "y", "z"], multi_label=True)
    train = tokenize_classification(data, tokenizer, max_seq_length=16)["train"]
    assert train["labels"] == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert train.features["labels"] == datasets.List(datasets.Value("float32"))


def test_text_pair_is_encoded_as_a_pair(tokenizer):
    data = _task({"text": ["the cat sat"], "text_pair": ["a cat was sitting"], "label": [1]}, ["no", "yes"])
    train = tokenize_classification(data, tokenizer, max_seq_length=64)["train"]
    expected = tokenizer("the cat sat", "a cat was sitting")
    assert train["input_ids"][0] == expected["input_ids"]
    assert set(train["token_type_ids"][0]) == {0, 1}
    short = tokenize_classification(data, tokenizer, max_seq_length=6)["train"]
    assert len(short["input_ids"][0]) == 6


def test_bad_max_length(tokenizer):
    data = _task({"text": ["a", "b"], "label": [0, 1]}, ["x", "y"])
    with pytest.raises(ValueError, match="max_seq_length"):
        tokenize_classification(data, tokenizer, max_seq_length=0)


def test_task_data_properties():
    data = _task({"text": ["a", "b"], "label": [0, 1]}, ["x", "y"])
    assert data.num_labels == 2 and data.id2label == {0: "x", 1: "y"} and data.label2id == {"x": 0, "y": 1}
    assert not data.has_text_pair and len(data.fingerprint) == 64


def test_loaded_corpus_tokenizes_and_pads_per_batch(tokenizer):
    from transformers import DataCollatorWithPadding

    from tlnlp.config import DataArgs
    from tlnlp.tasks import load_task_data

    data = load_task_data(DataArgs(dataset_name="bundled:tweet_sentiment", max_train_samples=8,
                                   max_eval_samples=4, max_predict_samples=4))
    out = tokenize_classification(data, tokenizer, max_seq_length=32)
    assert {s: len(d) for s, d in out.items()} == {"train": 8, "validation": 4, "test": 4}
    assert out["test"]["labels"] == data.splits["test"]["label"]
    batch = DataCollatorWithPadding(tokenizer)([out["train"][i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"].shape[1] <= 32
    assert batch["labels"].tolist() == out["train"]["labels"][:4]
