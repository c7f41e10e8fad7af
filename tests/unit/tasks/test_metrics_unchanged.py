"""The scikit-learn metrics give the numbers the hand-written numpy metrics gave (issue #18: results unchanged).

Each expected dict below was computed by tlnlp's numpy implementation before it moved to scikit-learn, on the
inputs beside it (random ones from a seeded generator, and edge cases: a class never predicted, a constant
prediction, classes absent from both arrays, one class, one row, multi-label with all-zero rows and one label).
"""

from __future__ import annotations

import pytest

from tlnlp.tasks import classification_metrics

TOL = 1e-12

RECORDED = [
    pytest.param(
        [0, 2, 0, 0, 1, 1, 3, 3, 3, 3, 0, 0, 3, 0, 0, 0, 3, 1, 1, 0],
        [1, 2, 3, 2, 3, 0, 1, 2, 2, 0, 0, 1, 0, 3, 2, 3, 2, 2, 1, 1],
        4, False,
        {"accuracy": 0.15, "f1_macro": 0.15651709401709402, "f1_micro": 0.15, "f1_weighted": 0.12617521367521367,
         "precision_macro": 0.14821428571428572, "recall_macro": 0.3402777777777778,
         "mcc": -0.09654933361919636},
        id="random-4"),
    pytest.param(
        [0, 1, 3, 2, 4, 1, 3, 4, 4, 1, 1, 1, 3, 4, 2, 1, 0, 1, 0, 0, 3, 2, 4, 1],
        [4, 1, 0, 2, 4, 1, 4, 4, 4, 1, 2, 1, 3, 2, 2, 1, 0, 1, 0, 0, 3, 2, 4, 1],
        5, False,
        {"accuracy": 0.7916666666666666, "f1_macro": 0.7654545454545454, "f1_micro": 0.7916666666666666,
         "f1_weighted": 0.7924873737373738, "precision_macro": 0.8033333333333333,
         "recall_macro": 0.7849999999999999, "mcc": 0.742152466367713},
        id="mostly-right-5"),
    pytest.param(
        [0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0, 1, 0, 2, 1],
        [0, 0, 2, 0, 0, 2, 2, 2, 0, 2, 2, 2, 0, 0, 0],
        3, False,
        {"accuracy": 0.3333333333333333, "f1_macro": 0.1851851851851852, "f1_micro": 0.3333333333333333,
         "f1_weighted": 0.37037037037037035, "precision_macro": 0.20833333333333334,
         "recall_macro": 0.16666666666666666, "mcc": -0.16964285714285715},
        id="class-never-predicted"),
    pytest.param(
        [2, 1, 0, 0, 0, 1, 0, 0, 1, 2, 1, 0],
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        3, False,
        {"accuracy": 0.3333333333333333, "f1_macro": 0.16666666666666666, "f1_micro": 0.3333333333333333,
         "f1_weighted": 0.16666666666666666, "precision_macro": 0.1111111111111111,
         "recall_macro": 0.3333333333333333, "mcc": 0.0},
        id="constant-prediction"),
    pytest.param(
        [1, 0, 1, 0, 0, 0, 2, 1, 1, 0, 2, 2, 2, 0],
        [0, 2, 2, 1, 2, 0, 1, 1, 0, 0, 1, 1, 1, 0],
        6, False,
        {"accuracy": 0.2857142857142857, "f1_macro": 0.12424242424242422, "f1_micro": 0.2857142857142857,
         "f1_weighted": 0.2909090909090909, "precision_macro": 0.12777777777777777, "recall_macro": 0.125,
         "mcc": -0.078742598543589},
        id="classes-absent-from-both"),
    pytest.param(
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
        1, False,
        {"accuracy": 1.0, "f1_macro": 1.0, "f1_micro": 1.0, "f1_weighted": 1.0, "precision_macro": 1.0,
         "recall_macro": 1.0, "mcc": 0.0},
        id="one-class"),
    pytest.param(
        [0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0],
        [1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1],
        2, False,
        {"accuracy": 0.375, "f1_macro": 0.375, "f1_micro": 0.375, "f1_weighted": 0.375, "precision_macro": 0.4,
         "recall_macro": 0.4, "mcc": -0.2},
        id="binary"),
    pytest.param(
        [2],
        [1],
        3, False,
        {"accuracy": 0.0, "f1_macro": 0.0, "f1_micro": 0.0, "f1_weighted": 0.0, "precision_macro": 0.0,
         "recall_macro": 0.0, "mcc": 0.0},
        id="one-row"),
    pytest.param(
        [[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 1], [0, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1], [1, 0, 0, 1],
         [0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [1, 0, 1, 1]],
        [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0],
         [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]],
        4, True,
        {"accuracy": 0.08333333333333333, "f1_micro": 0.5116279069767442, "f1_macro": 0.4888888888888888,
         "precision_micro": 0.6111111111111112, "recall_micro": 0.44, "precision_macro": 0.6410714285714285,
         "recall_macro": 0.45625, "hamming_loss": 0.4375},
        id="multi-random"),
    pytest.param(
        [[0, 1, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 0, 1], [0, 0, 0], [1, 1, 1]],
        [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]],
        3, True,
        {"accuracy": 0.3, "f1_micro": 0.0, "f1_macro": 0.0, "precision_micro": 0.0, "recall_micro": 0.0,
         "precision_macro": 0.0, "recall_macro": 0.0, "hamming_loss": 0.4},
        id="multi-all-zero-pred"),
    pytest.param(
        [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]],
        3, True,
        {"accuracy": 1.0, "f1_micro": 0.0, "f1_macro": 0.0, "precision_micro": 0.0, "recall_micro": 0.0,
         "precision_macro": 0.0, "recall_macro": 0.0, "hamming_loss": 0.0},
        id="multi-all-zero-both"),
    pytest.param(
        [[1, 1, 0, 0, 1], [0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 0],
         [0, 0, 1, 0, 1], [0, 0, 1, 1, 0], [1, 1, 1, 0, 0]],
        [[0, 1, 0, 0, 1], [0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 1, 0],
         [0, 0, 1, 0, 1], [0, 0, 1, 1, 0], [1, 1, 1, 0, 0]],
        5, True,
        {"accuracy": 0.7777777777777778, "f1_micro": 0.9411764705882353, "f1_macro": 0.9314285714285715,
         "precision_micro": 0.9411764705882353, "recall_micro": 0.9411764705882353,
         "precision_macro": 0.9333333333333333, "recall_macro": 0.95, "hamming_loss": 0.044444444444444446},
        id="multi-near-perfect"),
    pytest.param(
        [[1], [1], [0], [0], [1], [1], [0], [0], [0], [1], [0]],
        [[1], [0], [0], [1], [1], [1], [0], [0], [1], [0], [1]],
        1, True,
        {"accuracy": 0.5454545454545454, "f1_micro": 0.5454545454545454, "f1_macro": 0.5454545454545454,
         "precision_micro": 0.5, "recall_micro": 0.6, "precision_macro": 0.5, "recall_macro": 0.6,
         "hamming_loss": 0.45454545454545453},
        id="multi-one-label"),
]


@pytest.mark.parametrize("y_true, y_pred, num_labels, multi_label, expected", RECORDED)
def test_numbers_equal_the_recorded_numpy_ones(y_true, y_pred, num_labels, multi_label, expected):
    result = classification_metrics(y_true, y_pred, num_labels, multi_label=multi_label)
    assert list(result) == list(expected)  # same keys, same order
    for key, value in expected.items():
        assert type(result[key]) is float, key
        assert result[key] == pytest.approx(value, rel=TOL, abs=TOL), key


def test_no_warnings_on_degenerate_inputs(recwarn):
    for case in RECORDED:
        y_true, y_pred, num_labels, multi_label, _ = case.values
        classification_metrics(y_true, y_pred, num_labels, multi_label=multi_label)
    assert not [str(w.message) for w in recwarn.list]
