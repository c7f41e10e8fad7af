import datasets
import pytest

from tlnlp.compare import ALL, CellCache, CompareArgs, budget_train_set, cell_key
from tlnlp.compare.args import parse_budget, parse_overrides
from tlnlp.compare.budgets import effective_shots


def _train(n_per_class=60, classes=3):
    labels = [c for c in range(classes) for _ in range(n_per_class)]
    texts = [f"text {i}" for i in range(len(labels))]
    return datasets.Dataset.from_dict({"text": texts, "label": labels})


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_budget_sets_are_nested_and_balanced(seed):
    train = _train()
    sets = {k: set(budget_train_set(train, k, seed)["text"]) for k in (2, 8, 32)}
    assert sets[2] < sets[8] < sets[32]
    assert set(budget_train_set(train, ALL, seed)["text"]) == set(train["text"])
    counts = {c: budget_train_set(train, 8, seed)["label"].count(c) for c in range(3)}
    assert counts == {0: 8, 1: 8, 2: 8}


def test_budget_sets_are_seeded():
    train = _train()
    assert budget_train_set(train, 8, 0)["text"] == budget_train_set(train, 8, 0)["text"]
    assert budget_train_set(train, 8, 0)["text"] != budget_train_set(train, 8, 1)["text"]


def test_few_shot_demos_capped_by_budget():
    assert effective_shots(1, 2) == 1
    assert effective_shots(32, 2) == 2
    assert effective_shots(ALL, 4) == 4


def test_cell_key_changes_with_any_setting():
    base = {"strategy": "full", "budget": 8, "seed": 0, "learning_rate": 5e-5}
    assert cell_key(base) == cell_key(dict(reversed(list(base.items()))))
    for change in ({"budget": 32}, {"seed": 1}, {"learning_rate": 1e-4}, {"strategy": "lora"}):
        assert cell_key({**base, **change}) != cell_key(base)


def test_cell_cache_round_trip_and_corrupt_file(tmp_path):
    cache = CellCache(tmp_path / "cells")
    assert cache.get("abc") is None
    cache.put("abc", {"metrics": {"accuracy": 0.5}})
    assert cache.get("abc")["metrics"]["accuracy"] == 0.5
    assert cache.keys() == ["abc"]
    cache.path("bad").write_text("{not json")
    assert cache.get("bad") is None  # a half-written or corrupt file means the cell runs again
    assert not list((tmp_path / "cells").glob("*.tmp*"))


def test_parse_budget_and_overrides_errors():
    assert parse_budget("8") == 8 and parse_budget("ALL") == ALL
    for bad in ("0", "-3", "eight", "8.5"):
        with pytest.raises(ValueError, match="budgets"):
            parse_budget(bad)
    assert parse_overrides(["full=1e-4"], "learning_rates") == {"full": 1e-4}
    with pytest.raises(ValueError, match="learning_rates: 'full:1e-4'"):
        parse_overrides(["full:1e-4"], "learning_rates")


def test_compare_args_validation(tmp_path):
    with pytest.raises(ValueError, match="Unknown strategy 'ful'.*Did you mean 'full'"):
        CompareArgs(output_dir=str(tmp_path), strategies=["ful"])
    with pytest.raises(ValueError, match="nli_model"):
        CompareArgs(output_dir=str(tmp_path), strategies=["zero_shot_nli"])
    args = CompareArgs(output_dir=str(tmp_path), budgets=["8", "all"], batch_size=16, min_train_steps=60,
                       num_train_epochs=3, max_train_epochs=40)
    assert args.epochs_for(16) == 40  # one step per epoch: capped
    assert args.epochs_for(160) == 6  # 10 steps per epoch -> 60 steps
    assert args.epochs_for(4000) == 3
    assert args.learning_rate_map()["full"] == 5e-5
    assert args.learning_rate_map()["ulmfit"] == 5e-5  # the same defaults as the recipe: no ladder-only rate
