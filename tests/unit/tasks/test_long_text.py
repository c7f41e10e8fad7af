"""Texts longer than max_seq_length: counted when cut, classified whole by sliding windows with --long_text chunk."""

from __future__ import annotations

import logging

import datasets
import numpy as np
import pytest
import torch
from transformers import TextClassificationPipeline, TrainingArguments, pipeline

from tlnlp.config import DataArgs
from tlnlp.methods import METHODS, MethodArgs, apply_method
from tlnlp.tasks import TASKS
from tlnlp.tasks.classification.data import TaskData
from tlnlp.tasks.classification.metrics import make_compute_metrics
from tlnlp.tasks.classification.pipeline import WindowClassificationPipeline
from tlnlp.tasks.classification.tokenize import count_long_texts, tokenize_classification
from tlnlp.tasks.classification.windows import (
    ROW_ID,
    LongTextError,
    RowMetrics,
    check_long_text,
    first_by_row,
    mean_by_row,
)
from tlnlp.training import TlnlpTrainer, build_trainer

TASK = TASKS.get("classification")


def _words(n: int, word: str = "a") -> str:
    """A text of exactly ``n`` tokens for the bundled (BERT uncased) tokenizer."""
    return " ".join([word] * n)


def _data(texts, labels, pairs=None, multi_label=False, names=("neg", "pos")) -> TaskData:
    columns = {"text": list(texts), "label": list(labels)}
    if pairs is not None:
        columns["text_pair"] = list(pairs)
    rows = datasets.Dataset.from_dict(columns)
    return TaskData(splits=datasets.DatasetDict(train=rows, validation=rows, test=rows), labels=list(names),
                    multi_label=multi_label, name="toy", fingerprint="0")


def test_rows_longer_than_max_are_counted_logged_and_cut_as_before(tokenizer, caplog):
    lengths = [3, 6, 7, 12]  # + [CLS] and [SEP]: 5, 8, 9, 14 tokens; max 8 cuts the last two
    data = _data([_words(n) for n in lengths], [0, 1, 0, 1])
    with caplog.at_level(logging.WARNING, logger="tlnlp"):
        out = tokenize_classification(data, tokenizer, 8)
    assert out.length_metrics() == {"train_truncated_rows": 2, "eval_truncated_rows": 2, "test_truncated_rows": 2}
    assert "validation: 2 of 4 rows (50.0%) are longer than max_seq_length=8 tokens and were cut" in caplog.text
    expected = tokenizer([_words(n) for n in lengths], truncation=True, max_length=8)["input_ids"]
    assert out["validation"]["input_ids"] == expected
    assert sorted(out["train"].column_names) == ["attention_mask", "input_ids", "labels", "token_type_ids"]


def test_text_pairs_count_both_texts_and_short_data_logs_nothing(tokenizer, caplog):
    # [CLS] text [SEP] pair [SEP]: 3 special tokens; max 10
    data = _data([_words(3), _words(4), _words(1)], [0, 1, 0], pairs=[_words(4, "b"), _words(4, "b"), _words(1, "b")])
    assert tokenize_classification(data, tokenizer, 10).length_metrics()["eval_truncated_rows"] == 1
    assert count_long_texts(tokenizer, [_words(3), _words(4)], 10, pairs=[_words(4), _words(4)]) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tlnlp"):
        short = tokenize_classification(data, tokenizer, 64)
    assert short.length_metrics()["test_truncated_rows"] == 0 and "longer than" not in caplog.text


def test_chunk_makes_overlapping_windows_that_carry_row_and_label(tokenizer):
    data = _data([_words(3), _words(12), _words(20)], [1, 0, 1])
    out = tokenize_classification(data, tokenizer, 8, long_text="chunk", stride=2)
    # 6 text tokens a window, 4 new ones each next window: 12 tokens -> 3 windows, 20 -> 5
    assert out["test"][ROW_ID] == [0, 1, 1, 1, 2, 2, 2, 2, 2]
    assert out["test"]["labels"] == [1, 0, 0, 0, 1, 1, 1, 1, 1]
    assert all(len(ids) <= 8 for ids in out["test"]["input_ids"])
    text_tokens = sum(len(ids) - 2 for ids in out["test"]["input_ids"][1:4])
    assert text_tokens == 12 + 2 * 2  # every token of row 1, the shared ones twice
    assert out.length_metrics()["eval_long_rows"] == 2 and out.length_metrics()["eval_windows"] == 9
    assert out.length_metrics()["eval_truncated_rows"] == 0


def test_chunk_refuses_pairs_and_a_stride_without_room(tokenizer):
    pairs = _data([_words(3)], [0], pairs=[_words(3)])
    with pytest.raises(LongTextError, match="text pairs"):
        tokenize_classification(pairs, tokenizer, 8, long_text="chunk", stride=2)
    with pytest.raises(LongTextError, match="long_text_stride=6"):
        tokenize_classification(_data([_words(3)], [0]), tokenizer, 8, long_text="chunk", stride=6)


def test_data_args_check_long_text_and_default_the_stride():
    with pytest.raises(ValueError, match="long_text='split'.*truncate, chunk"):
        DataArgs(dataset_name="bundled:movie_sentiment", long_text="split")
    with pytest.raises(ValueError, match="long_text_stride=32 .*max_seq_length=64"):
        DataArgs(dataset_name="bundled:movie_sentiment", max_seq_length=64, long_text="chunk", long_text_stride=32)
    args = DataArgs(dataset_name="bundled:movie_sentiment", max_seq_length=64, long_text="chunk")
    assert args.long_text_stride == 16
    assert DataArgs(dataset_name="bundled:movie_sentiment").long_text == "truncate"


def test_embedding_methods_refuse_chunk_by_name():
    args = DataArgs(dataset_name="bundled:movie_sentiment", long_text="chunk")
    with pytest.raises(LongTextError, match="method='feature_extraction'"):
        check_long_text(args, METHODS.get("feature_extraction"))
    check_long_text(args, METHODS.get("full"))
    check_long_text(DataArgs(dataset_name="bundled:movie_sentiment"), METHODS.get("setfit"))


def test_mean_and_first_by_row():
    logits = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0], [0.0, 9.0]])
    rows = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(mean_by_row(logits, rows), [[3.0, 2.0], [0.0, 9.0]])
    np.testing.assert_array_equal(first_by_row(np.array([1, 1, 1, 0]), rows), [1, 0])


def test_row_metrics_score_rows_and_refuse_windows_without_row_ids():
    metrics = RowMetrics(make_compute_metrics(2))
    # row 0: windows disagree, mean says class 0 (right); row 1: one window, class 1 (right)
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    found = metrics((logits, (np.array([0, 0, 1]), np.array([0, 0, 1]))))
    assert found["accuracy"] == 1.0
    with pytest.raises(LongTextError, match="row ids"):
        metrics((logits, np.array([0, 0, 1])))


def _trainer(tmp_path, model, tokenizer, tokenized, data, data_args):
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True,
                             per_device_eval_batch_size=3, num_train_epochs=1)
    return build_trainer(apply_method(model, MethodArgs(method="full")), tokenizer, tokenized, args,
                         compute_metrics=TASK.compute_metrics(data, data_args),
                         trainer_class=TASK.trainer_class(data_args, TlnlpTrainer))


def _by_hand(model, tokenizer, text, max_length, stride):
    enc = tokenizer([text], truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
    with torch.no_grad():
        windows = [model(input_ids=torch.tensor([ids])).logits[0].numpy() for ids in enc["input_ids"]]
    return np.mean(windows, axis=0), len(windows)


@pytest.mark.parametrize("multi_label", [False, True])
def test_trainer_scores_each_row_by_the_mean_of_its_windows_logits(tmp_path, tiny_classifier, tokenizer,
                                                                   multi_label):
    texts = [_words(3), " ".join(f"w{i}" for i in range(9)), _words(2, "b"), " ".join(["good"] * 11)]
    labels = [[0], [1], [0, 1], [1]] if multi_label else [0, 1, 0, 1]
    data = _data(texts, labels, multi_label=multi_label)
    data_args = DataArgs(dataset_name="bundled:toy", max_seq_length=8, long_text="chunk", long_text_stride=2)
    model = tiny_classifier("bert", problem_type="multi_label_classification" if multi_label else None).eval()
    tokenized = TASK.tokenize(data, tokenizer, data_args)
    trainer = _trainer(tmp_path, model, tokenizer, tokenized, data, data_args)
    output = trainer.predict(tokenized["test"])
    expected = [_by_hand(model, tokenizer, text, 8, 2) for text in texts]
    assert output.predictions.shape == (4, 2)
    assert [n > 1 for _, n in expected] == [False, True, False, True]  # the long rows made several windows
    np.testing.assert_allclose(output.predictions, [logits for logits, _ in expected], rtol=1e-5, atol=1e-6)
    per_row = make_compute_metrics(2, multi_label=multi_label)(
        (output.predictions, np.asarray(first_by_row(tokenized["test"]["labels"], tokenized["test"][ROW_ID]))))
    assert output.metrics["test_accuracy"] == pytest.approx(per_row["accuracy"])
    assert trainer.evaluate()["eval_accuracy"] == pytest.approx(per_row["accuracy"])  # the per-epoch evaluation


def test_short_rows_score_as_in_truncate_mode(tmp_path, tiny_classifier, tokenizer):
    data = _data([_words(3), _words(5, "b"), " ".join(["good"] * 11)], [0, 1, 1])
    model = tiny_classifier("bert").eval()
    scores = {}
    for mode in ("truncate", "chunk"):
        data_args = DataArgs(dataset_name="bundled:toy", max_seq_length=8, long_text=mode)
        tokenized = TASK.tokenize(data, tokenizer, data_args)
        scores[mode] = _trainer(tmp_path / mode, model, tokenizer, tokenized, data, data_args).predict(
            tokenized["test"]).predictions
    np.testing.assert_allclose(scores["chunk"][:2], scores["truncate"][:2], rtol=1e-6, atol=1e-6)
    assert not np.allclose(scores["chunk"][2], scores["truncate"][2])  # the long row: all of it, not its start


def test_window_pipeline_averages_logits_and_scores_short_texts_as_the_plain_one(tiny_classifier, tokenizer):
    model = tiny_classifier("bert").eval()
    windows = pipeline("text-classification", model=model, tokenizer=tokenizer, truncation=True, max_length=8,
                       stride=2, pipeline_class=WindowClassificationPipeline)
    plain = pipeline("text-classification", model=model, tokenizer=tokenizer, truncation=True, max_length=8)
    assert isinstance(windows, TextClassificationPipeline)
    long_text = " ".join(f"w{i}" for i in range(15))
    logits, count = _by_hand(model, tokenizer, long_text, 8, 2)
    assert count > 2
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    short = {a["label"]: a["score"] for a in plain(_words(3), top_k=None)}
    for batch_size in (1, 2):  # batches pad the windows of several texts together
        answers = windows([long_text, _words(3)], top_k=None, batch_size=batch_size)
        got = {a["label"]: a["score"] for a in answers[0]}
        np.testing.assert_allclose([got["LABEL_0"], got["LABEL_1"]], probs, rtol=1e-5)
        assert {a["label"]: a["score"] for a in answers[1]} == pytest.approx(short, rel=1e-5)
    assert windows(_words(3)) == plain(_words(3))  # one window: the very same scores


def test_a_tokenizer_without_rust_encodings_is_counted_by_lengths(tokenizer):
    from tlnlp.tasks.classification.tokenize import _cut

    texts = [_words(3), _words(6), _words(7)]
    assert _cut(tokenizer, {}, texts, None, 8) == [0, 0, 1]
    assert _cut(tokenizer, tokenizer(texts, truncation=True, max_length=8), texts, None, 8) == [0, 0, 1]


def test_the_stride_flag_parses():
    from tlnlp.config import parse_args

    (args,) = parse_args(DataArgs, args=["--dataset_name", "bundled:movie_sentiment", "--max_seq_length", "32",
                                         "--long_text", "chunk", "--long_text_stride", "6"])
    assert (args.long_text, args.long_text_stride) == ("chunk", 6)
