"""Classification metrics against scikit-learn called directly, prediction helpers and the Trainer adapter."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from tlnlp.tasks import classification_metrics, make_compute_metrics, predictions_from_logits
from tlnlp.tasks.classification import confusion_matrix

TOL = 1e-9
SINGLE_KEYS = {"accuracy", "f1_macro", "f1_micro", "f1_weighted", "precision_macro", "recall_macro", "mcc"}
MULTI_KEYS = {"accuracy", "f1_micro", "f1_macro", "precision_micro", "recall_micro", "precision_macro",
              "recall_macro", "hamming_loss"}


def sklearn_single(y_true, y_pred, num_labels):
    labels = list(range(num_labels))
    kw = dict(labels=labels, zero_division=0)
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro", **kw),
        "f1_micro": skm.f1_score(y_true, y_pred, average="micro", **kw),
        "f1_weighted": skm.f1_score(y_true, y_pred, average="weighted", **kw),
        "precision_macro": skm.precision_score(y_true, y_pred, average="macro", **kw),
        "recall_macro": skm.recall_score(y_true, y_pred, average="macro", **kw),
        "mcc": skm.matthews_corrcoef(y_true, y_pred),
    }


def sklearn_multi(y_true, y_pred):
    kw = dict(zero_division=0)
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "f1_micro": skm.f1_score(y_true, y_pred, average="micro", **kw),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro", **kw),
        "precision_micro": skm.precision_score(y_true, y_pred, average="micro", **kw),
        "recall_micro": skm.recall_score(y_true, y_pred, average="micro", **kw),
        "precision_macro": skm.precision_score(y_true, y_pred, average="macro", **kw),
        "recall_macro": skm.recall_score(y_true, y_pred, average="macro", **kw),
        "hamming_loss": skm.hamming_loss(y_true, y_pred),
    }


def assert_close(ours, reference, context):
    assert set(ours) == set(reference), context
    for key, value in reference.items():
        assert isinstance(ours[key], float), (key, context)
        assert abs(ours[key] - value) <= TOL, f"{key}: ours {ours[key]!r} vs sklearn {value!r} ({context})"


def single_label_cases(seed: int):
    """Random and degenerate (y_true, y_pred, num_labels) cases."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    n = int(rng.integers(1, 80))
    y = rng.integers(0, k, n)
    yield "random", y, rng.integers(0, k, n), k
    noisy = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
    yield "mostly-right", y, noisy, k
    yield "perfect", y, y.copy(), k
    yield "one-class-predicted", y, np.full(n, int(rng.integers(0, k))), k
    yield "one-class-true", np.full(n, 1), rng.integers(0, k, n), k
    yield "constant-both", np.zeros(n, int), np.zeros(n, int), k
    used = rng.choice(k, size=max(1, k - 2), replace=False)  # classes absent from both arrays
    yield "empty-classes", rng.choice(used, n), rng.choice(used, n), k
    yield "predicted-class-never-true", rng.choice(used, n), rng.integers(0, k, n), k
    yield "binary", rng.integers(0, 2, n), rng.integers(0, 2, n), 2
    yield "binary-all-positive-pred", rng.integers(0, 2, n), np.ones(n, int), 2


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@pytest.mark.parametrize("seed", range(30))
def test_single_label_matches_sklearn(seed):
    for name, y_true, y_pred, k in single_label_cases(seed):
        ours = classification_metrics(y_true, y_pred, num_labels=k)
        context = f"seed={seed} case={name} k={k} n={len(y_true)}"
        assert_close(ours, sklearn_single(y_true, y_pred, k), context)


def test_single_label_keys_and_known_values():
    result = classification_metrics([0, 1, 2, 2], [0, 1, 1, 2], num_labels=4)
    assert set(result) == SINGLE_KEYS
    assert result["accuracy"] == pytest.approx(0.75)
    # class 3 has no rows: macro-F1 averages (1, 2/3, 2/3, 0) over all four classes
    assert result["f1_macro"] == pytest.approx((1 + 2 / 3 + 2 / 3 + 0) / 4)


def test_accepts_lists_and_float_ids():
    ours = classification_metrics([0.0, 1.0, 1.0], [0, 1, 0], num_labels=2)
    assert ours["accuracy"] == pytest.approx(2 / 3)


def test_mcc_is_zero_for_constant_prediction():
    assert classification_metrics([0, 1, 2, 1], [1, 1, 1, 1], num_labels=3)["mcc"] == 0.0


def multi_label_cases(seed: int):
    rng = np.random.default_rng(1000 + seed)
    k = int(rng.integers(2, 7))  # sklearn reads an n x 1 matrix as binary class ids; k=1 is tested separately
    n = int(rng.integers(1, 60))
    y = (rng.random((n, k)) < rng.uniform(0.05, 0.6)).astype(int)
    logits = rng.normal(0, 2, (n, k)) + 1.5 * (2 * y - 1)
    for threshold in (0.3, 0.5, 0.8):
        yield f"thr{threshold}", y, predictions_from_logits(logits, multi_label=True, threshold=threshold), k
    yield "random", y, rng.integers(0, 2, (n, k)), k
    yield "all-zero-pred", y, np.zeros((n, k), int), k
    yield "all-one-pred", y, np.ones((n, k), int), k
    yield "empty-truth", np.zeros((n, k), int), rng.integers(0, 2, (n, k)), k
    yield "all-zero-both", np.zeros((n, k), int), np.zeros((n, k), int), k
    yield "perfect", y, y.copy(), k


@pytest.mark.parametrize("seed", range(20))
def test_multi_label_matches_sklearn(seed):
    for name, y_true, y_pred, k in multi_label_cases(seed):
        ours = classification_metrics(y_true, y_pred, num_labels=k, multi_label=True)
        assert_close(ours, sklearn_multi(y_true, y_pred), f"seed={seed} case={name} k={k} n={len(y_true)}")


def test_multi_label_single_column_is_one_binary_label():
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, (40, 1)), rng.integers(0, 2, (40, 1))
    ours = classification_metrics(y, p, num_labels=1, multi_label=True)
    binary_f1 = skm.f1_score(y[:, 0], p[:, 0], pos_label=1, zero_division=0)
    assert ours["f1_micro"] == pytest.approx(binary_f1, abs=TOL)
    assert ours["f1_macro"] == pytest.approx(binary_f1, abs=TOL)
    binary_precision = skm.precision_score(y[:, 0], p[:, 0], zero_division=0)
    assert ours["precision_micro"] == pytest.approx(binary_precision, abs=TOL)
    assert ours["hamming_loss"] == pytest.approx(float((y != p).mean()), abs=TOL)


def test_multi_label_known_values():
    y_true = np.array([[1, 0, 1], [0, 1, 0]])
    y_pred = np.array([[1, 0, 1], [1, 1, 0]])
    result = classification_metrics(y_true, y_pred, num_labels=3, multi_label=True)
    assert set(result) == MULTI_KEYS
    assert result["accuracy"] == pytest.approx(0.5)  # exact-match ratio
    assert result["hamming_loss"] == pytest.approx(1 / 6)


@pytest.mark.parametrize(
    "y_true, y_pred, k, multi, match",
    [
        ([0, 3], [0, 1], 3, False, "outside 0..2"),
        ([0, 1], [0, -1], 3, False, "outside"),
        ([0, 1, 1], [0, 1], 3, False, "differ in length"),
        ([], [], 3, False, "empty"),
        ([[0, 1]], [[0, 1]], 3, False, "1-D"),
        ([0.5, 1], [0, 1], 3, False, "integer"),
        ([[0, 2]], [[0, 1]], 2, True, "only 0 and 1"),
        ([[0, 1]], [[0, 1, 0]], 2, True, "n x 2"),
        ([0, 1], [0, 1], 0, False, "at least 1"),
    ],
)
def test_invalid_inputs_raise(y_true, y_pred, k, multi, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(y_true, y_pred, num_labels=k, multi_label=multi)


def test_confusion_matrix_counts():
    cm = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], num_labels=4)
    np.testing.assert_array_equal(cm, skm.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], labels=range(4)))


def test_predictions_from_logits():
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    np.testing.assert_array_equal(predictions_from_logits(logits, multi_label=False), [1, 0])
    np.testing.assert_array_equal(predictions_from_logits(logits, multi_label=True), [[1, 1, 0], [1, 0, 1]])
    # sigmoid(x) > 0.8  <=>  x > log(4) ~ 1.386
    np.testing.assert_array_equal(predictions_from_logits(logits, multi_label=True, threshold=0.8),
                                  [[0, 1, 0], [1, 0, 0]])
    assert predictions_from_logits(logits, multi_label=True).dtype.kind == "i"
    np.testing.assert_array_equal(predictions_from_logits(np.array([-2.0, 0.3]), multi_label=False), [0, 1])
    huge = np.array([[1000.0, -1000.0]])  # stable sigmoid: no overflow warnings
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(predictions_from_logits(huge, multi_label=True), [[1, 0]])
    with pytest.raises(ValueError, match="threshold"):
        predictions_from_logits(logits, multi_label=True, threshold=1.0)


def test_compute_metrics_takes_first_item_of_tuple_predictions():
    from transformers import EvalPrediction

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 3))
    labels = rng.integers(0, 3, 40)
    hidden = rng.normal(size=(40, 5, 8))
    compute = make_compute_metrics(num_labels=3)
    result = compute(EvalPrediction(predictions=(logits, hidden), label_ids=labels))
    expected = classification_metrics(labels, logits.argmax(-1), num_labels=3)
    assert result == expected
    assert compute((logits, labels)) == expected  # plain (predictions, labels) pair too


def test_compute_metrics_ignores_minus_100_labels():
    from transformers import EvalPrediction

    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    labels = np.array([0, 1, -100])
    result = make_compute_metrics(num_labels=2)(EvalPrediction(predictions=logits, label_ids=labels))
    assert result["accuracy"] == 1.0


def test_compute_metrics_multi_label_with_float_labels_and_threshold():
    from transformers import EvalPrediction

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(30, 4))
    labels = (rng.random((30, 4)) < 0.4).astype(np.float32)  # BCE labels are floats
    compute = make_compute_metrics(num_labels=4, multi_label=True, threshold=0.3)
    result = compute(EvalPrediction(predictions=(logits,), label_ids=labels))
    preds = (1 / (1 + np.exp(-logits)) > 0.3).astype(int)
    assert_close(result, sklearn_multi(labels.astype(int), preds), "multi-label compute_metrics")
    pair = (logits[:2].tolist(), [[1, 0, 0, 1], [0, 1, 1, 0]])  # plain lists in a (logits, labels) pair
    assert set(compute(pair)) == MULTI_KEYS


def test_compute_metrics_batch_mode_accumulates_torch_tensors():
    import torch
    from transformers import EvalPrediction

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(25, 3)).astype(np.float32)
    labels = rng.integers(0, 3, 25)
    compute = make_compute_metrics(num_labels=3)
    for start in (0, 10):
        batch = EvalPrediction(predictions=torch.tensor(logits[start:start + 10]),
                               label_ids=torch.tensor(labels[start:start + 10]))
        assert compute(batch, compute_result=False) == {}
    last = EvalPrediction(predictions=torch.tensor(logits[20:]).bfloat16(),
                          label_ids=torch.tensor(labels[20:]))
    result = compute(last, compute_result=True)
    assert result == classification_metrics(labels, logits.argmax(-1), num_labels=3)
    # state is reset after the final batch
    again = compute(EvalPrediction(predictions=torch.tensor(logits), label_ids=torch.tensor(labels)),
                    compute_result=True)
    assert again == result


def test_import_is_light_and_side_effect_free():
    code = ("import sys, logging; before = logging.getLogger().handlers[:]; import tlnlp.tasks; "
            "assert 'evaluate' not in sys.modules and 'datasets' not in sys.modules; "
            "assert 'sklearn' not in sys.modules and 'scipy' not in sys.modules; "
            "assert 'transformers' not in sys.modules; assert logging.getLogger().handlers == before")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("batch_eval_metrics", [False, True])
def test_works_inside_trainer_evaluate(tiny_classifier, tmp_path, batch_eval_metrics):
    import torch
    from transformers import Trainer, TrainingArguments

    model = tiny_classifier("bert", num_labels=3)
    generator = torch.Generator().manual_seed(0)
    rows = [{"input_ids": torch.randint(5, 200, (8,), generator=generator), "labels": torch.tensor(i % 3)}
            for i in range(20)]
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=6, report_to="none",
                             use_cpu=True, batch_eval_metrics=batch_eval_metrics)
    trainer = Trainer(model=model, args=args, eval_dataset=rows, compute_metrics=make_compute_metrics(3))
    result = trainer.evaluate()
    with torch.no_grad():
        logits = model(input_ids=torch.stack([r["input_ids"] for r in rows])).logits.numpy()
    expected = classification_metrics([i % 3 for i in range(20)], logits.argmax(-1), num_labels=3)
    for key, value in expected.items():
        assert result[f"eval_{key}"] == pytest.approx(value, abs=1e-9)
