"""Hub datasets: fail fast offline with a useful error; ClassLabel names become the label list."""

from __future__ import annotations

import time

import datasets
import huggingface_hub
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import RepositoryNotFoundError

from tlnlp.data import DataError
from tlnlp.tasks import load_task_data

from .helpers import make_args


def _offline(monkeypatch, offline: bool) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", offline)


def _no_load(*args, **kwargs):
    raise AssertionError("load_dataset must not be called")


def test_offline_fails_fast_and_lists_bundled_corpora(monkeypatch):
    _offline(monkeypatch, True)
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_task_data(make_args(dataset_name="tlnlp-tests/no-such-dataset-3f9a"))
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "Hub is unreachable" in message and "offline mode" in message
    assert "bundled:movie_sentiment" in message and "bundled:bbc_news" in message
    assert "--train_file" in message


def test_unreachable_hub_is_detected_before_load_dataset(monkeypatch):
    _offline(monkeypatch, False)

    def refuse(self, *args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", refuse)
    monkeypatch.setattr(datasets, "load_dataset", _no_load)
    with pytest.raises(DataError, match="Hub is unreachable .*Name or service not known.*bundled:trec6"):
        load_task_data(make_args(dataset_name="someone/data"))


def test_unknown_hub_dataset(monkeypatch):
    _offline(monkeypatch, False)

    def missing(self, *args, **kwargs):
        err = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
        Exception.__init__(err, "404")
        raise err

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", missing)
    monkeypatch.setattr(datasets, "load_dataset", _no_load)
    with pytest.raises(DataError, match="was not found on the Hugging Face Hub"):
        load_task_data(make_args(dataset_name="someone/typo"))


def _fake_hub(monkeypatch, dataset_dict: datasets.DatasetDict) -> list:
    calls = []

    def fake_load(name, config=None, **kwargs):
        calls.append((name, config))
        return dataset_dict

    _offline(monkeypatch, True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    return calls


def test_class_label_names_and_order_are_kept(monkeypatch):
    names = ["pos", "neg"]  # the source's order, not sorted
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=names)})
    train = datasets.Dataset.from_dict(
        {"sentence": [f"s{i}" for i in range(20)], "label": [i % 2 for i in range(20)]}, features=features)
    dev = datasets.Dataset.from_dict({"sentence": ["d0", "d1"], "label": [0, 1]}, features=features)
    hidden = datasets.Dataset.from_dict({"sentence": ["t0", "t1"], "label": [-1, -1]}, features=features)
    calls = _fake_hub(monkeypatch, datasets.DatasetDict({"train": train, "dev": dev, "test": hidden}))
    data = load_task_data(make_args(dataset_name="glue", dataset_config_name="sst2"))
    assert calls == [("glue", "sst2")]
    assert data.labels == ["pos", "neg"] and data.name == "glue/sst2" and data.hub_dataset_id == "glue"
    assert set(data.splits) == {"train", "validation"}  # the unlabelled test split is left out
    assert data.splits["train"]["label"] == [i % 2 for i in range(20)]
    assert data.splits["validation"]["text"] == ["d0", "d1"]


def test_hub_multi_label_class_labels(monkeypatch):
    names = ["anger", "joy", "fear"]
    features = datasets.Features({"text": datasets.Value("string"),
                                  "labels": datasets.List(datasets.ClassLabel(names=names))})
    rows = {"text": [f"t{i}" for i in range(30)], "labels": [[[0], [1, 2], []][i % 3] for i in range(30)]}
    train = datasets.Dataset.from_dict(rows, features=features)
    _fake_hub(monkeypatch, datasets.DatasetDict({"train": train}))
    data = load_task_data(make_args(dataset_name="someone/emotions", label_column="labels"))
    assert data.multi_label and data.labels == names
    by_text = dict(zip(rows["text"], rows["labels"], strict=True))
    for split in data.splits.values():
        assert all(sorted(by_text[t]) == ids for t, ids in zip(split["text"], split["label"], strict=True))


def test_hub_dataset_without_train_split(monkeypatch):
    only_test = datasets.Dataset.from_dict({"text": ["a"], "label": [0]})
    _fake_hub(monkeypatch, datasets.DatasetDict({"test": only_test}))
    with pytest.raises(DataError, match="no training split"):
        load_task_data(make_args(dataset_name="someone/test-only"))
