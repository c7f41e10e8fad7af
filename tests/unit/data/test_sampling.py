"""k-shot sampling, seeded subsets and stratified splits: deterministic and nested."""

from __future__ import annotations

import logging

import datasets
import pytest

from tlnlp.data import sample_per_class, seeded_subset, stratified_split_indices
from tlnlp.data.splits import deduplicate
from tlnlp.tasks import load_task_data

from .helpers import make_args, sentiment_rows, to_csv


def _dataset(sizes: dict[int, int]) -> datasets.Dataset:
    rows = [(f"class {c} row {i}", c) for c, n in sizes.items() for i in range(n)]
    return datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [c for _, c in rows]})


def test_k_shot_is_stratified_deterministic_and_nested():
    data = _dataset({0: 100, 1: 60, 2: 40})
    small, large = sample_per_class(data, 8, seed=3), sample_per_class(data, 32, seed=3)
    for sample, k in ((small, 8), (large, 32)):
        assert sorted(sample["label"]) == sorted([0] * k + [1] * k + [2] * k)
    assert set(small["text"]) <= set(large["text"])
    assert sample_per_class(data, 8, seed=3)["text"] == small["text"]
    assert sample_per_class(data, 8, seed=4)["text"] != small["text"]


def test_k_shot_per_class_choice_does_not_depend_on_other_classes():
    a = sample_per_class(_dataset({0: 50, 1: 50}), 5, seed=0)
    b = sample_per_class(_dataset({0: 50, 1: 50, 2: 10}), 5, seed=0)
    def class_0(sample):
        return [t for t in sample["text"] if t.startswith("class 0")]

    assert class_0(a) == class_0(b)


def test_k_shot_small_class_is_kept_whole_with_a_warning(caplog):
    data = _dataset({0: 50, 1: 3})
    with caplog.at_level(logging.WARNING, logger="tlnlp.data"):
        sample = sample_per_class(data, 8, seed=0)
    assert sample["label"].count(1) == 3 and sample["label"].count(0) == 8
    assert "Fewer than k=8" in caplog.text and "1: 3" in caplog.text


def test_k_shot_multi_label_and_errors():
    labels = [[0], [1], [0, 1], [], [1], [0], [], [1]]
    data = datasets.Dataset.from_dict({"text": list("abcdefgh"), "label": labels})
    sample = sample_per_class(data, 1, seed=0)
    assert len(sample) == 3  # one row each for first id 0, first id 1, and no label
    with pytest.raises(ValueError, match="positive"):
        sample_per_class(data, 0, seed=0)
    with pytest.raises(ValueError, match="labels"):
        sample_per_class(data, 1, seed=0, label_column="labels")


def test_seeded_subset_is_nested_and_keeps_order():
    data = _dataset({0: 30, 1: 30})
    first, more = seeded_subset(data, 10, seed=1), seeded_subset(data, 25, seed=1)
    assert len(first) == 10 and set(first["text"]) <= set(more["text"])
    positions = [data["text"].index(t) for t in first["text"]]
    assert positions == sorted(positions)
    assert seeded_subset(data, None, seed=1) is data and seeded_subset(data, 1000, seed=1) is data


def test_stratified_split_sizes_and_rare_classes():
    strata = [0] * 90 + [1] * 9 + [2] * 1
    parts = stratified_split_indices(strata, {"validation": 0.1, "test": 0.1}, seed=0)
    assert len(parts["validation"]) == 10 and len(parts["test"]) == 10 and len(parts["train"]) == 80
    assert sorted(i for p in parts.values() for i in p) == list(range(100))
    assert 99 in parts["train"]  # a class of one stays in training
    assert sum(strata[i] == 1 for i in parts["validation"]) == 1
    assert parts == stratified_split_indices(strata, {"validation": 0.1, "test": 0.1}, seed=0)


def test_deduplicate_drops_copies_and_conflicts():
    kept, stats = deduplicate(["a b", "a  b ", "c", "c", "d", "e"], ["x", "x", "x", "y", "y", "x"])
    assert kept == [0, 4, 5] and stats == {"duplicates": 1, "conflicting": 1}


def test_load_task_data_applies_k_shot_then_max_samples(write):
    path = write("train.csv", to_csv(sentiment_rows(50)))
    base = dict(train_file=path, train_samples_per_class=16)
    data = load_task_data(make_args(**base))
    assert sorted(data.splits["train"]["label"]) == [0] * 16 + [1] * 16
    fewer = load_task_data(make_args(train_file=path, train_samples_per_class=4))
    assert set(fewer.splits["train"]["text"]) <= set(data.splits["train"]["text"])
    caps = dict(max_train_samples=10, max_eval_samples=3, max_predict_samples=2)
    capped = load_task_data(make_args(**base, **caps))
    assert len(capped.splits["train"]) == 10
    assert set(capped.splits["train"]["text"]) <= set(data.splits["train"]["text"])
    assert len(capped.splits["validation"]) == 3 and len(capped.splits["test"]) == 2
    assert capped.fingerprint != data.fingerprint
    assert load_task_data(make_args(**base, **caps)).fingerprint == capped.fingerprint


def test_bundled_k_shot_uses_the_seed_argument():
    args = make_args(dataset_name="bundled:trec6", train_samples_per_class=4)
    a, b = load_task_data(args, seed=1), load_task_data(args, seed=2)
    assert len(a.splits["train"]) == 24 and a.splits["train"]["text"] != b.splits["train"]["text"]
    assert a.splits["test"]["text"] == b.splits["test"]["text"]
    assert load_task_data(args, seed=1).fingerprint == a.fingerprint
