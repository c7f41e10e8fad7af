"""The classification recipe with texts longer than --max_seq_length: counted in all_results.json, or windowed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoTokenizer

from tests.recipes.conftest import load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.inference import load_pipeline
from tlnlp.methods import MethodArgs
from tlnlp.tasks.classification.windows import LongTextError

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)
MAX = 16


def _run(out, model_dir, *extra):
    args = recipe_args(model_dir, out, "--max_seq_length", str(MAX), "--num_train_epochs", "1", *extra)
    return load_recipe("classification").main(*parse_args(*TYPES, args=args))


def _predictions(out):
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def chunk_run(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("long") / "chunk"
    return out, _run(out, tiny_bert_dir, "--long_text", "chunk")


def test_truncated_rows_reach_all_results_the_split_files_and_the_card(tmp_path, tiny_bert_dir):
    out = tmp_path / "truncate"
    metrics = _run(out, tiny_bert_dir)
    results = json.loads((out / "all_results.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    test_texts = [row["text"] for row in _predictions(out)]
    long_test = sum(len(tokenizer(text)["input_ids"]) > MAX for text in test_texts)
    assert 0 < long_test < len(test_texts)
    assert results["test_truncated_rows"] == long_test == metrics["test_truncated_rows"]
    assert 0 < results["eval_truncated_rows"] <= 32 and 0 < results["train_truncated_rows"] <= 96
    assert json.loads((out / "eval_results.json").read_text())["eval_truncated_rows"] == results["eval_truncated_rows"]
    card = (out / "README.md").read_text()
    assert "## Long texts" in card and f"{long_test} test" in card
    assert results["test_samples"] == 40


def test_chunk_run_scores_rows_and_its_pipeline_repeats_its_predictions(chunk_run):
    out, metrics = chunk_run
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_samples"] == 40 and results["test_windows"] > 40 and results["test_truncated_rows"] == 0
    assert results["eval_samples"] == 32 and 0 < results["eval_long_rows"] <= 32
    rows = _predictions(out)
    assert len(rows) == 40
    pipe = load_pipeline(out)
    answers = pipe([row["text"] for row in rows], top_k=None)
    for row, answer in zip(rows, answers, strict=True):
        scores = {a["label"]: a["score"] for a in answer}
        assert scores == pytest.approx(row["scores"], abs=2e-6)
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert any("eval_accuracy" in entry for entry in history)  # per-epoch evaluation scored rows too
    assert "long_text_stride: 4" in (out / "run_config.yaml").read_text()


def test_evaluation_only_run_of_a_chunk_folder_scores_as_the_training_run(chunk_run, tmp_path):
    out, metrics = chunk_run
    args = ["--model_name_or_path", str(out), "--dataset_name", "bundled:movie_sentiment", "--max_train_samples",
            "96", "--max_eval_samples", "32", "--max_predict_samples", "40", "--output_dir", str(tmp_path / "eval"),
            "--do_predict", "--report_to", "none"]
    scored = load_recipe("classification").main(*parse_args(*TYPES, args=args))
    assert scored["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    np.testing.assert_allclose([r["scores"]["positive"] for r in _predictions(tmp_path / "eval")],
                               [r["scores"]["positive"] for r in _predictions(out)], atol=2e-6)


def test_embedding_methods_refuse_chunk(tmp_path, tiny_bert_dir):
    with pytest.raises(LongTextError, match="method='feature_extraction'"):
        _run(tmp_path / "fx", tiny_bert_dir, "--long_text", "chunk", "--method", "feature_extraction")


def test_embedding_method_counts_the_texts_its_encoder_cuts(tmp_path, tiny_bert_dir):
    out = tmp_path / "fx"
    metrics = _run(out, tiny_bert_dir, "--method", "feature_extraction")
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    long_test = sum(len(tokenizer(row["text"])["input_ids"]) > MAX for row in _predictions(out))
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_truncated_rows"] == long_test == metrics["test_truncated_rows"] > 0
    assert results["train_truncated_rows"] > 0 and "eval_truncated_rows" in results
    assert json.loads((out / "test_results.json").read_text())["test_truncated_rows"] == long_test
    assert "Rows longer than the sentence encoder takes" in (out / "README.md").read_text()
