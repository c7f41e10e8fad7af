"""The label-entailment recipe end to end: pairs from several datasets, a model the pipeline accepts, its outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from transformers import pipeline

from tests.hub_server import local_hub_fixture
from tests.recipes.conftest import ROOT, load_recipe
from tlnlp.config import ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs
from tlnlp.zeroshot import EntailmentArgs, ScoringOptions, entailment_id, score_nli

TYPES = (ModelArgs, EntailmentArgs, MethodArgs, TrainingArgs)
CONFIGS = sorted((ROOT / "recipes" / "configs" / "train_entailment").glob("*.yaml"))
TEXTS = ["Free entry! Win a prize now, text WIN to 80086.", "Where is the Eiffel Tower?",
         "Shares fell after the bank's profits dropped.", "ok see you at home later"]
LABELS = ["spam", "a location", "business", "a personal message"]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first.startswith("# accelerate launch") and "recipes/train_entailment.py" in first
    assert f"--config recipes/configs/train_entailment/{config.name}" in first
    model_args, entail_args, _, train_args = parse_args(*TYPES, args=["--config", str(config)])
    assert model_args.model_name_or_path == "bundled:minilm" and len(entail_args.train_datasets) >= 2
    assert train_args.output_dir


def _args(model_dir, out, *extra):
    return ["--model_name_or_path", str(model_dir), "--train_datasets", "bundled:trec6", "bundled:sms_spam",
            "--max_samples_per_dataset", "48", "--num_negatives", "2", "--max_seq_length", "48",
            "--zero_shot_eval_datasets", "bundled:movie_sentiment", "--zero_shot_max_samples", "16",
            "--output_dir", str(out), "--max_steps", "6", "--per_device_train_batch_size", "16",
            "--per_device_eval_batch_size", "32", "--learning_rate", "1e-3", "--report_to", "none",
            "--save_strategy", "no", "--dataloader_num_workers", "0", *extra]


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    yield from local_hub_fixture(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("entail") / "run"
    metrics = load_recipe("train_entailment").main(*parse_args(*TYPES, args=_args(tiny_bert_dir, out)))
    return out, metrics


def test_run_writes_a_finetuned_runs_outputs_and_its_sources(trained):
    out, metrics = trained
    for name in ("model.safetensors", "config.json", "tokenizer.json", "all_results.json", "train_results.json",
                 "eval_results.json", "test_results.json", "predictions.jsonl", "confusion_matrix.png",
                 "run_config.yaml", "environment.json", "README.md", "entailment_sources.json",
                 "zero_shot_results.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin"))
    sources = json.loads((out / "entailment_sources.json").read_text())
    assert [s["name"] for s in sources] == ["bundled:trec6", "bundled:sms_spam"]
    trec, sms = sources
    assert trec["pairs"]["train"] == 48 * 3  # gold + 2 negatives out of 5 wrong labels
    assert sms["pairs"]["train"] == 48 * 2  # gold + the only wrong label
    assert trec["hypotheses"][trec["labels"].index("LOC")] == "This example is a location."
    results = json.loads((out / "all_results.json").read_text())
    assert "zeroshot_movie_sentiment_accuracy" in results and "test_accuracy" in results
    assert results["zeroshot_movie_sentiment_accuracy"] == pytest.approx(metrics["zeroshot_movie_sentiment_accuracy"])
    unseen = json.loads((out / "zero_shot_results.json").read_text())["bundled:movie_sentiment"]
    assert unseen["samples"] == 16 and unseen["spec"] == "sentiment" and unseen["spec_version"]
    card = (out / "README.md").read_text()
    assert "recipes/train_entailment.py" in card and "recipes/classification.py" not in card
    assert "Label-entailment training" in card and "bundled:movie_sentiment" in card


def test_run_config_reproduces_the_recipes_settings(trained):
    out, _ = trained
    saved = yaml.safe_load((out / "run_config.yaml").read_text())
    assert saved["train_datasets"] == ["bundled:trec6", "bundled:sms_spam"] and saved["num_negatives"] == 2
    _, entail_args, _, train_args = parse_args(*TYPES, args=["--config", str(out / "run_config.yaml")])
    assert entail_args.max_samples_per_dataset == 48 and train_args.max_steps == 6


def test_saved_model_names_entailment_and_the_pipeline_gives_the_same_scores(trained):
    out, _ = trained
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "entailment", "1": "not_entailment"}
    pipe = pipeline("zero-shot-classification", model=str(out))
    assert entailment_id(pipe.model.config) == 0 and pipe.entailment_id == 0
    for multi_label in (False, True):
        rows = pipe(TEXTS, candidate_labels=LABELS, multi_label=multi_label)
        expected = np.array([[r["scores"][r["labels"].index(label)] for label in LABELS] for r in rows])
        got = score_nli(pipe.model, pipe.tokenizer, TEXTS, LABELS, options=ScoringOptions(multi_label=multi_label))
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def _rates(out) -> dict[int, dict[str, float]]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return {e["step"]: {k: v for k, v in e.items() if k == "learning_rate" or k.startswith("lr/")}
            for e in history if "learning_rate" in e}


def test_ulmfit_method_gets_the_slanted_schedule_and_gradual_unfreezing(tmp_path, tiny_bert_dir):
    # the ULMFiT options reach the entailment trainer, not only its discriminative param groups
    out = tmp_path / "ulmfit"
    load_recipe("train_entailment").main(*parse_args(*TYPES, args=_args(
        tiny_bert_dir, out, "--method", "ulmfit", "--gradual_unfreezing", "steps", "--unfreeze_every_steps", "2",
        "--cut_frac", "0.2", "--max_steps", "10", "--logging_steps", "1", "--zero_shot_max_samples", "4")))
    assert (out / "learning_rates.png").is_file()
    rates = _rates(out)
    assert sorted(rates) == list(range(1, 11))
    head = [rates[step]["learning_rate"] for step in range(1, 11)]
    # slanted triangular: from peak / stlr_ratio (32), rises for cut = 10 x 0.2 = 2 steps to the peak, then falls
    assert head[0] == pytest.approx(1e-3 / 32) and head[0] < head[1] < head[2] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(head[2:], head[3:], strict=False))
    # gradual unfreezing every 2 steps: block_1 thaws at step 2, block_0 at 4, the embeddings at 6
    assert rates[2]["lr/block_1"] == 0 and rates[3]["lr/block_1"] == pytest.approx(1e-3 * 0.95)  # discriminative
    assert rates[4]["lr/block_0"] == 0 and rates[5]["lr/block_0"] > 0
    assert rates[6]["lr/embeddings"] == 0 and rates[7]["lr/embeddings"] > 0


def test_push_to_hub_pushes_once_with_every_output(local_hub, tiny_bert_dir, tmp_path):
    out = tmp_path / "entail-tiny"
    load_recipe("train_entailment").main(*parse_args(*TYPES, args=_args(
        tiny_bert_dir, out, "--push_to_hub", "--zero_shot_max_samples", "4")))
    repo_id = "tlnlp-tester/entail-tiny"
    messages = local_hub.commit_messages(repo_id)
    assert messages.count("End of training (tlnlp)") == 1, messages
    files = local_hub.files(repo_id)
    assert {"entailment_sources.json", "zero_shot_results.json", "all_results.json", "README.md"} <= set(files)
    assert "zeroshot_movie_sentiment_accuracy" in json.loads(files["all_results.json"])
    card = files["README.md"].decode()
    assert "Label-entailment training" in card and "recipes/train_entailment.py" in card


def test_pairs_of_each_split_come_from_that_split_only(tmp_path):
    from tlnlp.zeroshot import entailment_task_data

    data, _ = entailment_task_data(EntailmentArgs(train_datasets=["bundled:sms_spam", "bundled:trec6"],
                                                  max_samples_per_dataset=64, num_negatives=1))
    texts = {split: set(rows["text"]) for split, rows in data.splits.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert data.labels == ["entailment", "not_entailment"] and data.has_text_pair
    assert len(data.fingerprint) == 64


@pytest.mark.slow
def test_bundled_minilm_trained_briefly_matches_the_pipeline(tmp_path, bundled_minilm_dir):
    out = tmp_path / "minilm"
    load_recipe("train_entailment").main(*parse_args(*TYPES, args=_args(
        "bundled:minilm", out, "--max_steps", "8", "--learning_rate", "5e-5", "--zero_shot_max_samples", "8")))
    pipe = pipeline("zero-shot-classification", model=str(out))
    for multi_label in (False, True):
        rows = pipe(TEXTS, candidate_labels=LABELS, multi_label=multi_label)
        expected = np.array([[r["scores"][r["labels"].index(label)] for label in LABELS] for r in rows])
        got = score_nli(pipe.model, pipe.tokenizer, TEXTS, LABELS,
                        options=ScoringOptions(multi_label=multi_label, batch_size=3))
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_load_or_train_trains_once_then_loads(tmp_path, tiny_bert_dir):
    from tlnlp.zeroshot import load_or_train_entailment_model

    folder = tmp_path / "entail"
    settings = {"train_datasets": ["bundled:sms_spam", "bundled:trec6"], "model_name_or_path": str(tiny_bert_dir),
                "device": "cpu", "max_samples_per_dataset": 16, "max_seq_length": 32, "max_steps": 2,
                "per_device_train_batch_size": 8, "num_negatives": 1, "dataloader_num_workers": 0}
    model, tokenizer = load_or_train_entailment_model(folder, **settings)
    assert entailment_id(model.config) == 0 and (folder / "entailment_sources.json").is_file()
    import yaml

    config = yaml.safe_load((folder / "run_config.yaml").read_text())
    assert config["logging_steps"] == 20  # the recipes' training defaults reach it (the parser, not hand-typed ones)
    assert config["train_sampling_strategy"] == "group_by_length" and config["max_steps"] == 2
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again, _ = load_or_train_entailment_model(folder, **settings)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # loaded, not retrained
    scores = score_nli(again, tokenizer, TEXTS, LABELS)
    np.testing.assert_allclose(scores, score_nli(model, tokenizer, TEXTS, LABELS), atol=1e-6)
