"""The zero-shot recipe end to end: NLI and embedding strategies write the outputs of a fine-tuned run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.recipes.conftest import ROOT, load_recipe
from tlnlp.config import DataArgs, EvaluationArgs, ModelArgs, parse_args
from tlnlp.zeroshot import ZeroShotArgs, ZeroShotError

TYPES = (ModelArgs, DataArgs, ZeroShotArgs, EvaluationArgs)
CONFIGS = sorted((ROOT / "recipes" / "configs" / "zero_shot").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first.startswith("# accelerate launch") and "recipes/zero_shot.py" in first
    assert f"--config recipes/configs/zero_shot/{config.name}" in first
    _, data_args, zs_args, eval_args = parse_args(*TYPES, args=["--config", str(config)])
    assert eval_args.output_dir and data_args.dataset_name and zs_args.strategy in ("nli", "embedding")


@pytest.fixture(scope="module")
def nli_model_dir(tmp_path_factory, tokenizer):
    from tests.unit.zeroshot.conftest import make_nli_model

    folder = tmp_path_factory.mktemp("nli")
    make_nli_model("2way").save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _run(model_dir, out, *extra):
    args = ["--model_name_or_path", str(model_dir), "--output_dir", str(out), "--max_seq_length", "48",
            "--batch_size", "16", *extra]
    if "--train_file" not in extra:
        args += ["--dataset_name", "bundled:movie_sentiment", "--max_predict_samples", "24"]
    return load_recipe("zero_shot").main(*parse_args(*TYPES, args=args))


@pytest.fixture(scope="module")
def nli_run(tmp_path_factory, nli_model_dir):
    out = tmp_path_factory.mktemp("zs") / "nli"
    return out, _run(nli_model_dir, out, "--hypothesis_template", "This example is {}.", "It is {}.")


def test_nli_run_writes_the_outputs_of_a_finetuned_run_with_the_spec_version(nli_run):
    out, metrics = nli_run
    for name in ("test_results.json", "all_results.json", "predictions.jsonl", "confusion_matrix.png",
                 "run_config.yaml", "environment.json", "README.md"):
        assert (out / name).is_file(), name
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_accuracy"] == pytest.approx(metrics["test_accuracy"]) and results["test_samples"] == 24
    assert results["spec_version"] == "1.0.0+custom" and results["spec"]["name"] == "sentiment"
    assert results["spec"]["templates"] == ["This example is {}.", "It is {}."] and results["strategy"] == "nli"
    card = (out / "README.md").read_text()
    assert "Zero-shot spec" in card and "1.0.0+custom" in card and "recipes/zero_shot.py" in card
    saved = yaml.safe_load((out / "run_config.yaml").read_text())
    assert saved["strategy"] == "nli" and saved["hypothesis_template"] == ["This example is {}.", "It is {}."]


def test_predictions_are_the_scorers_probabilities_in_row_order(nli_run, nli_model_dir):
    from tlnlp.config import DataArgs as Data
    from tlnlp.tasks import load_task_data
    from tlnlp.zeroshot import ScoringOptions, load_nli_model, score_nli

    out, _ = nli_run
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    data = load_task_data(Data(dataset_name="bundled:movie_sentiment", max_predict_samples=24))
    model, tokenizer = load_nli_model(str(nli_model_dir), device="cpu")
    expected = score_nli(model, tokenizer, data.splits["test"]["text"], data.labels,
                         hypothesis_template=["This example is {}.", "It is {}."],
                         options=ScoringOptions(max_length=48))
    got = np.array([[r["scores"][label] for label in data.labels] for r in rows])
    assert [r["text"] for r in rows] == data.splits["test"]["text"]
    np.testing.assert_allclose(got, expected, atol=2e-6)
    accuracy = np.mean([r["label"] == r["prediction"] for r in rows])
    assert accuracy == pytest.approx(json.loads((out / "all_results.json").read_text())["test_accuracy"])


def test_embedding_strategy_on_a_validation_split(tmp_path, tiny_bert_dir):
    metrics = _run(tiny_bert_dir, tmp_path / "emb", "--strategy", "embedding", "--split", "validation",
                   "--max_eval_samples", "20")
    assert metrics["validation_samples"] == 20 and 0 <= metrics["validation_accuracy"] <= 1
    results = json.loads((tmp_path / "emb" / "all_results.json").read_text())
    assert results["spec"]["name"] == "sentiment_embedding" and results["strategy"] == "embedding"
    # a plain transformers folder (no sentence-transformers config) is mean-pooled, and the card says so
    card = (tmp_path / "emb" / "README.md").read_text()
    assert "## Sentence embeddings" in card and "mean pooling" in card and "no sentence-transformers config" in card


def test_multi_label_data_is_scored_per_label(tmp_path, nli_model_dir):
    rows = [{"text": f"row {i} about {' and '.join(tags)}", "label": tags}
            for i, tags in enumerate([["sports"], ["politics", "economy"], ["economy"], ["sports", "politics"]] * 6)]
    path = tmp_path / "multi.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = _run(nli_model_dir, tmp_path / "multi", "--train_file", str(path), "--test_split_percentage", "25")
    assert "test_f1_micro" in metrics
    first = json.loads((tmp_path / "multi" / "predictions.jsonl").read_text().splitlines()[0])
    assert "predicted_labels" in first and set(first["scores"]) == {"economy", "politics", "sports"}
    assert not np.isclose(sum(first["scores"].values()), 1.0)  # independent per-label probabilities


def test_nli_strategy_refuses_a_model_without_an_entailment_class(tmp_path, tiny_bert_dir):
    with pytest.raises(ZeroShotError, match="not an NLI model.*train_entailment"):
        _run(tiny_bert_dir, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_non_empty_output_dir_is_refused(nli_run, nli_model_dir):
    from tlnlp.training import OutputDirError

    out, _ = nli_run
    before = (out / "all_results.json").read_bytes()
    with pytest.raises(OutputDirError, match="overwrite_output_dir"):
        _run(nli_model_dir, out)
    assert (out / "all_results.json").read_bytes() == before


def test_cli_errors_exit_cleanly_and_write_nothing(tmp_path, tiny_bert_dir):
    out = tmp_path / "never"
    cmd = [sys.executable, str(ROOT / "recipes" / "zero_shot.py"), "--model_name_or_path", str(tiny_bert_dir),
           "--dataset_name", "bundled:movie_sentiment", "--max_predict_samples", "4", "--output_dir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "entailment" in last and "Traceback" not in proc.stderr
    assert not out.exists()
