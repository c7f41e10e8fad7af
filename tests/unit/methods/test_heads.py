"""Heads over sentence embeddings: logistic regression, the torch linear head, the zero-shot prior and its strength."""

from __future__ import annotations

import numpy as np
import pytest

from tlnlp.methods import METHODS, MethodArgs, apply_method
from tlnlp.methods.heads import HeadOptions, LabelPrior, check_head_options, choose_prior_strength, fit_head
from tlnlp.methods.heads.fit import _anchored


def _blobs(n_per_class=8, labels=3, dim=16, seed=0, spread=0.6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels, dim))
    x = np.concatenate([centres[i] + spread * rng.normal(size=(n_per_class, dim)) for i in range(labels)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.repeat(np.arange(labels), n_per_class)
    return x, y, centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _accuracy(head, x, y):
    return float(((x @ head.weight.T + head.bias).argmax(axis=1) == y).mean())


def test_logistic_head_learns_and_has_a_row_per_label_even_for_two_classes():
    x, y, _ = _blobs(labels=2)
    head = fit_head(x, y, 2, HeadOptions())
    assert head.weight.shape == (2, 16) and head.bias.shape == (2,)
    assert _accuracy(head, x, y) == 1.0
    assert head.info == {"head": "logistic", "head_init": "random"}


def test_linear_head_learns():
    x, y, _ = _blobs()
    head = fit_head(x, y, 3, HeadOptions(head="linear", head_epochs=40, head_learning_rate=0.05))
    assert _accuracy(head, x, y) == 1.0


def test_absent_label_is_never_predicted_and_one_class_is_refused():
    x, y, _ = _blobs(labels=3)
    keep = y < 2
    head = fit_head(x[keep], y[keep], 3, HeadOptions())
    assert head.weight.shape == (3, 16) and (x @ head.weight.T + head.bias).argmax(axis=1).max() < 2
    with pytest.raises(ValueError, match="at least two classes"):
        fit_head(x[y == 0], y[y == 0], 3, HeadOptions())


def test_a_strong_prior_keeps_the_prototypes_and_a_weak_one_lets_the_rows_decide():
    x, y, centres = _blobs()
    wrong = centres[[1, 2, 0]] * 20  # a prior that names every class wrongly
    w_strong, _ = _anchored(x, y, wrong, 1e6)
    assert np.allclose(w_strong, wrong, atol=1e-3)
    w_weak, b_weak = _anchored(x, y, wrong, 1e-3)
    assert float(((x @ w_weak.T + b_weak).argmax(axis=1) == y).mean()) == 1.0
    w_off, b_off = _anchored(x, y, wrong, 0.0)  # strength 0: no prior, L2 towards zero as scikit-learn's default
    w_ridge, b_ridge = _anchored(x, y, np.zeros_like(wrong), 1.0)
    assert np.allclose(w_off, w_ridge) and np.allclose(b_off, b_ridge)


def test_auto_strength_is_chosen_by_cross_validation_on_the_rows_only():
    x, y, centres = _blobs(spread=1.5, seed=3)
    good, bad = centres * 20, centres[[1, 2, 0]] * 20
    strength_good, record = choose_prior_strength(x, y, good)
    strength_bad, _ = choose_prior_strength(x, y, bad)
    assert record["folds"] == 5 and set(record["cv_log_loss"]) == {"0", "0.01", "0.1", "1", "10", "100", "1000"}
    assert strength_good > strength_bad  # a helpful prior is trusted more than a misleading one
    head = fit_head(x, y, 3, HeadOptions(head_init="zero_shot"), prior=good)
    assert head.info["head_prior_strength"] == strength_good and "prior_strength_search" in head.info
    fixed = fit_head(x, y, 3, HeadOptions(head_init="zero_shot", head_prior_strength="2.5"), prior=good)
    assert fixed.info["head_prior_strength"] == 2.5 and "prior_strength_search" not in fixed.info


def test_label_prior_weights_are_mean_unit_prototypes_over_temperature():
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0]), "c": np.array([1.0, 0.0])}
    prior = LabelPrior(texts=(("a", "c"), ("b",)), temperature=0.5)
    weights = prior.weights(lambda texts: np.stack([vectors[t] for t in texts]))
    assert np.allclose(weights, [[2.0, 0.0], [0.0, 2.0]])


@pytest.mark.parametrize(("field", "value", "match"), [
    ("head", "mlp", "head='mlp' is not valid"), ("head_init", "prototypes", "head_init='prototypes'"),
    ("head_prior_strength", "strong", "head_prior_strength='strong'"), ("head_prior_strength", "-1", "auto"),
    ("head_epochs", 0, "head_epochs=0"), ("head_learning_rate", 0.0, "head_learning_rate=0.0")])
def test_bad_head_flags_name_the_flag(field, value, match):
    with pytest.raises(ValueError, match=match):
        check_head_options(HeadOptions(**{field: value}))
    with pytest.raises(ValueError, match=match):
        MethodArgs(method="feature_extraction", **{field: value})


def test_embedding_methods_do_not_go_through_apply_method():
    import torch

    assert not METHODS.get("setfit").trains_with_trainer and not METHODS.get("feature_extraction").trains_with_trainer
    with pytest.raises(ValueError, match="trains without the Trainer"):
        apply_method(torch.nn.Linear(2, 2), MethodArgs(method="setfit"))


def test_bad_setfit_flags_name_the_flag():
    with pytest.raises(ValueError, match="setfit_sampling_strategy='pairs'"):
        MethodArgs(method="setfit", setfit_sampling_strategy="pairs")
    with pytest.raises(ValueError, match="setfit_max_steps=0"):
        MethodArgs(method="setfit", setfit_max_steps=0)
    with pytest.raises(ValueError, match=r"setfit_epochs_choices=\[1, 0\] must be positive whole numbers, e.g. "
                                         "--setfit_epochs_choices 1 2 4"):
        MethodArgs(method="setfit", setfit_epochs_choices=[1, 0])


@pytest.mark.parametrize("strategy", ["oversampling", "undersampling", "unique"])
@pytest.mark.parametrize("sizes", [(8, 8), (8, 8, 8, 8, 8, 8), (3, 9, 5), (32, 32)])
def test_pair_count_matches_the_setfit_sampler(strategy, sizes):
    from setfit.sampler import ContrastiveDataset

    from tlnlp.methods.setfit.method import pair_count

    labels = [label for label, n in enumerate(sizes) for _ in range(n)]
    texts = [f"row {i}" for i in range(len(labels))]
    built = ContrastiveDataset(texts, labels, multilabel=False, sampling_strategy=strategy)
    assert pair_count(labels, strategy, None) == len(built)
    assert pair_count(labels, strategy, 20) == len(ContrastiveDataset(texts, labels, multilabel=False,
                                                                      num_iterations=20))


def test_setfit_max_steps_only_shortens():
    from tlnlp.methods.setfit.method import capped_steps

    labels = [i % 6 for i in range(48)]  # 8 per class: 1,920 pairs, 120 steps of 16
    assert capped_steps(labels, MethodArgs(method="setfit")) == -1
    assert capped_steps(labels, MethodArgs(method="setfit", setfit_max_steps=150)) == -1
    assert capped_steps(labels, MethodArgs(method="setfit", setfit_max_steps=100)) == 100
