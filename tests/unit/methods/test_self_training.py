"""Self-training of a head over sentence embeddings: pseudo-labels, the refit, the in-budget choice, the flags."""

from __future__ import annotations

import numpy as np
import pytest

from tlnlp.methods import MethodArgs
from tlnlp.methods.heads import PER_CLASS_GRID, HeadOptions, check_head_options, fit_head
from tlnlp.methods.heads.fit import _logistic
from tlnlp.methods.heads.self_training import choose_pseudo_per_class, pseudo_label, self_train

CENTRES = np.random.default_rng(100).normal(size=(3, 16))


def _rows(per_class, seed, spread=1.2):
    """Unit-length rows around three fixed centres, and their labels."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([centre + spread * rng.normal(size=(per_class, 16)) for centre in CENTRES])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(3), per_class)


def _fit(x, y):
    return _logistic(x, y, 3, 0)


def _accuracy(weight, bias, x, y):
    return float(((x @ weight.T + bias).argmax(axis=1) == y).mean())


def test_pseudo_labels_are_the_heads_surest_rows_per_predicted_class():
    weight, bias = np.eye(3) * 10, np.zeros(3)
    pool = np.array([[0.9, 0.1, 0.0], [0.5, 0.4, 0.0], [0.0, 1.0, 0.0], [0.1, 0.6, 0.5], [0.99, 0.0, 0.01]])
    rows, labels = pseudo_label(pool, weight, bias, per_class=2)
    assert rows.tolist() == [4, 0, 2, 3] and labels.tolist() == [0, 0, 1, 1]  # surest first; class 2 predicts none
    rows, labels = pseudo_label(pool, weight, bias, per_class=1)
    assert rows.tolist() == [4, 2] and labels.tolist() == [0, 1]


def test_self_training_refits_on_the_rows_and_the_pseudo_labelled_pool():
    x, y = _rows(4, seed=1)
    pool, _ = _rows(200, seed=51)
    test_x, test_y = _rows(300, seed=99)
    first = _fit(x, y)
    weight, bias, record = self_train(x, y, pool, _fit, 0, first=first)
    assert weight is first[0] and record == {"per_class": 0, "pool_rows": 600, "pseudo_rows": 0}
    weight, bias, record = self_train(x, y, pool, _fit, 32)
    assert record["pseudo_rows"] == 96 and record["pseudo_per_label"] == [32, 32, 32]
    # four labelled rows per class: the pool's structure lifts the head on unseen rows
    assert _accuracy(weight, bias, test_x, test_y) > _accuracy(*first, test_x, test_y)


def test_the_count_is_chosen_by_cross_validation_on_the_labelled_rows():
    x, y = _rows(4, seed=4)
    pool, _ = _rows(200, seed=54)
    count, record = choose_pseudo_per_class(x, y, pool, _fit, seed=0)
    assert record["folds"] == 4 and set(record["cv_accuracy"]) == {str(c) for c in PER_CLASS_GRID}
    best = max(record["cv_accuracy"].values())
    assert record["cv_accuracy"][str(count)] == best and count > 0  # here the pool helps held-out rows
    one, record = choose_pseudo_per_class(x[[0, 4, 8]], y[[0, 4, 8]], pool, _fit)
    assert one == 0 and record["folds"] == 0  # one row per class: nothing to cross-validate, no self-training


def test_fit_head_self_trains_only_with_a_pool_and_a_count():
    x, y = _rows(4, seed=2)
    pool, _ = _rows(100, seed=52)
    assert "self_training" not in fit_head(x, y, 3, HeadOptions()).info  # no pool
    off = fit_head(x, y, 3, HeadOptions(self_training_per_class="0"), pool=pool)
    assert off.info["self_training"] == {"per_class": 0, "pool_rows": 300, "pseudo_rows": 0}
    assert np.allclose(off.weight, fit_head(x, y, 3, HeadOptions()).weight)  # the first fit, unchanged
    fixed = fit_head(x, y, 3, HeadOptions(self_training_per_class="8"), pool=pool).info
    assert fixed["self_training"]["pseudo_rows"] == 24 and "self_training_search" not in fixed
    auto = fit_head(x, y, 3, HeadOptions(), pool=pool).info
    assert auto["self_training"]["per_class"] in PER_CLASS_GRID and auto["self_training_search"]["folds"] == 4
    anchored = fit_head(x, y, 3, HeadOptions(head_init="zero_shot", self_training_per_class="8"),
                        prior=CENTRES / np.linalg.norm(CENTRES, axis=1, keepdims=True) * 20, pool=pool).info
    assert "head_prior_strength" in anchored and anchored["self_training"]["pseudo_rows"] == 24


@pytest.mark.parametrize(("field", "value", "match"), [
    ("self_training_per_class", "many", "self_training_per_class='many'"),
    ("self_training_per_class", "-3", "auto or a whole number"),
    ("self_training_samples", 0, "self_training_samples=0"),
    ("self_training_texts", "no_such_file.txt", "self_training_texts='no_such_file.txt' is neither rest nor a file")])
def test_bad_self_training_flags_name_the_flag(field, value, match):
    with pytest.raises(ValueError, match=match):
        check_head_options(HeadOptions(**{field: value}))
    with pytest.raises(ValueError, match=match):
        MethodArgs(method="feature_extraction", **{field: value})


def test_setfit_chooses_the_body_length_first_then_the_count_at_that_length(monkeypatch):
    from tlnlp.methods.heads import FitInputs
    from tlnlp.methods.setfit import epochs

    gold = np.array([0, 1] * 6)

    def logits(right: int, sure: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        guess = np.where(np.arange(len(gold)) < right, gold, 1 - gold)
        return np.eye(2)[guess] * sure, gold

    # 1 epoch is best with no self-training; 2 epochs with 32 texts per class is the best point of all
    table = {1: {0: logits(12), 8: logits(11), 32: logits(10), 128: logits(9)},
             2: {0: logits(10), 8: logits(11), 32: logits(12, sure=3.0), 128: logits(9)}}
    monkeypatch.setattr(epochs, "_fold_scores", lambda encoder, inputs, args, n, splits, train: table[n])
    inputs = FitInputs(texts=["t"] * len(gold), labels=gold, label_names=["a", "b"], unlabeled=["u"] * 20)
    args = MethodArgs(method="setfit", setfit_epochs_choices=[1, 2], self_training_per_class="auto")
    chosen, found = epochs.choose_body_epochs(None, inputs, args, None)
    assert chosen == 1 and found["self_training_per_class"] == 0  # not (2, 32): the length came first
    assert found["cv_accuracy"] == {"1": 1.0, "2": 10 / 12}  # each length's score with no self-training
    assert found["self_training_search"]["cv_accuracy"] == {"0": 1.0, "8": 11 / 12, "32": 10 / 12, "128": 9 / 12}
