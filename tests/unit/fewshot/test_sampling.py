from collections import Counter

import datasets
import pytest

from tlnlp.fewshot import sample_demonstrations


@pytest.fixture
def rows():
    labels = [i % 3 for i in range(60)]
    return datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(60)], "label": labels})


def test_balanced_deterministic_and_nested(rows):
    four = sample_demonstrations(rows, 4, seed=1)
    assert Counter(rows[i]["label"] for i in four) == {0: 4, 1: 4, 2: 4}
    assert four == sample_demonstrations(rows, 4, seed=1)
    assert set(four) != set(sample_demonstrations(rows, 4, seed=2))
    assert set(sample_demonstrations(rows, 1, seed=1)) <= set(four)
    assert sample_demonstrations(rows, 0, seed=1) == []


def test_orders_permute_the_same_rows(rows):
    orders = [sample_demonstrations(rows, 4, seed=3, order=o) for o in range(3)]
    assert all(sorted(o) == sorted(orders[0]) for o in orders)
    assert len({tuple(o) for o in orders}) == 3


def test_same_rows_as_the_data_layer_k_shot(rows):
    from tlnlp.data import sample_per_class

    picked = sample_per_class(rows, 4, 5)["text"]
    assert sorted(rows[i]["text"] for i in sample_demonstrations(rows, 4, seed=5)) == sorted(picked)


def test_negative_values_are_refused(rows):
    with pytest.raises(ValueError, match="non-negative"):
        sample_demonstrations(rows, -1, seed=0)
