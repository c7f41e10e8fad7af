"""The domain-adaptation (DANN) recipe end to end on a tiny BERT: outputs, λ = 0, LoRA, text files, resume, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerCallback

import tlnlp
from tests.recipes.conftest import ROOT, launch_recipe, load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.data import DataError
from tlnlp.domain import (
    HEAD_FILE,
    RESULTS_FILE,
    TARGET_PREDICTIONS,
    CheckpointError,
    DomainAdaptationError,
    DomainArgs,
    dann_lambda,
    run_domain_adaptation,
)
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, DomainArgs, TrainingArgs)
CONFIGS = sorted((ROOT / "recipes" / "configs" / "domain_adaptation").glob("*.yaml"))
MOVIE = ("--target_dataset", "bundled:movie_sentiment", "--target_max_samples", "64",
         "--target_max_predict_samples", "40")


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first == ("# accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/domain_adaptation.py "
                     f"--config recipes/configs/domain_adaptation/{config.name}")
    model_args, data_args, method_args, domain_args, train_args = parse_args(*TYPES, args=["--config", str(config)])
    assert data_args.dataset_name and domain_args.target_dataset and train_args.output_dir
    assert domain_args.domain_loss_weight > 0 and method_args.method in ("full", "lora")
    assert 1200 <= data_args.max_train_samples <= 2000 and domain_args.target_max_predict_samples == 500
    source_only = parse_args(*TYPES, args=["--config", str(config), "--domain_loss_weight", "0"])
    assert source_only[3].domain_loss_weight == 0.0  # the flag wins over the file


def _source_args(model_dir, out, *extra: str, source=("--dataset_name", "bundled:amazon_sentiment")) -> list[str]:
    """The classification recipe's fast flags with another source: Amazon sentences by default."""
    args = recipe_args(model_dir, out, *extra)
    at = args.index("--dataset_name")
    return args[:at] + list(source) + args[at + 2:]


def _args(model_dir, out, *extra: str, target=MOVIE, **source) -> list[str]:
    return _source_args(model_dir, out, "--a_distance_samples", "40", *target, *extra, **source)


def _main(model_dir, out, *extra: str, target=MOVIE) -> dict[str, float]:
    return load_recipe("domain_adaptation").main(*parse_args(*TYPES, args=_args(model_dir, out, *extra,
                                                                                  target=target)))


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("dann") / "full"
    return out, _main(tiny_bert_dir, out)


def test_full_run_writes_results_with_target_metrics_and_a_distances(full_run):
    out, metrics = full_run
    for name in (RESULTS_FILE, TARGET_PREDICTIONS, "all_results.json", "test_results.json", "model.safetensors",
                 "config.json", "README.md", "run_config.yaml", "predictions.jsonl", "environment.json"):
        assert (out / name).is_file(), name
    assert not (out / HEAD_FILE).exists(), "the final folder is a plain classifier"
    results = _json(out / RESULTS_FILE)
    assert results["source"] == {"name": "bundled:amazon_sentiment", "train_rows": 96}
    assert results["target"]["name"] == "bundled:movie_sentiment" and results["target"]["unlabelled_texts"] == 64
    assert results["target"]["test_rows"] == 40 and results["target"]["dropped_test_overlap"] == 0
    distance = results["a_distance"]
    assert distance["before"]["rows_per_domain"] == 40 and distance["after"]["rows_per_domain"] == 40
    for key in ("before", "after"):
        assert -2.0 <= distance[key]["value"] <= 2.0
        assert distance[key]["value"] == pytest.approx(2 * (1 - 2 * distance[key]["error"]))
        assert metrics[f"a_distance_{key}"] == pytest.approx(distance[key]["value"])
    rows = [json.loads(line) for line in (out / TARGET_PREDICTIONS).read_text().splitlines()]
    assert len(rows) == 40 and {r["label"] for r in rows} <= {"negative", "positive"}
    correct = sum(r["label"] == r["prediction"] for r in rows) / 40
    assert metrics["target_test_accuracy"] == pytest.approx(correct) == results["target_test"]["accuracy"]
    assert results["source_test"]["accuracy"] == pytest.approx(metrics["test_accuracy"])  # finish's test split
    assert results["adversary"]["steps"] == 24 and results["adversary"]["max_lambda"] == 1.0
    assert results["adversary"]["final_lambda"] == pytest.approx(dann_lambda(23 / 24))
    assert results["adversary"]["learning_rate"] == pytest.approx(1e-2)  # 10 x --learning_rate by default
    saved = _json(out / "all_results.json")
    assert saved["target_test_accuracy"] == metrics["target_test_accuracy"] and "a_distance_after" in saved


def test_training_logs_domain_loss_accuracy_and_lambda(full_run):
    out, _ = full_run
    logs = [e for e in _json(out / "trainer_state.json")["log_history"] if "loss" in e]
    assert len(logs) == 12
    for entry in logs:
        assert {"classification_loss", "domain_loss", "domain_accuracy", "dann_lambda"} <= set(entry)
        assert 0.0 <= entry["domain_accuracy"] <= 1.0
        assert entry["loss"] == pytest.approx(entry["classification_loss"] + entry["domain_loss"], abs=2e-3)
    lambdas = [e["dann_lambda"] for e in logs]
    assert lambdas == sorted(lambdas) and lambdas[0] == pytest.approx(dann_lambda(1 / 24), abs=1e-4)


def test_the_domain_classifier_trains_and_is_checkpointed(full_run):
    out, _ = full_run
    first, last = load_file(str(out / "checkpoint-12" / HEAD_FILE)), load_file(str(out / "checkpoint-24" / HEAD_FILE))
    assert set(first) == {"net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"}
    assert first["net.0.weight"].shape == (256, 32)
    assert not torch.equal(first["net.0.weight"], last["net.0.weight"])


def test_card_has_a_domain_adaptation_section_and_the_run_reloads(full_run):
    out, metrics = full_run
    card = (out / "README.md").read_text()
    section = card.split("## Domain adaptation", 1)[1].split("\n## ", 1)[0]
    for text in ("DANN (Ganin et al. 2016)", "`bundled:amazon_sentiment` (96 training rows)",
                 "`bundled:movie_sentiment` (64 texts", "λ schedule: λ = 1 · (2 / (1 + exp(−10·p)) − 1)",
                 "| | source test | target test |", "before training", "recipes/domain_adaptation.py"):
        assert text in (section if "recipes/" not in text else card), text
    assert f"{metrics['target_test_accuracy']:.4f}" in section
    assert f"{metrics['a_distance_before']:.3f} before training, {metrics['a_distance_after']:.3f} after" in section
    config = yaml.safe_load((out / "run_config.yaml").read_text())
    assert config["target_dataset"] == "bundled:movie_sentiment" and config["domain_loss_weight"] == 1.0
    parse_args(*TYPES, args=["--config", str(out / "run_config.yaml")])  # the folder's settings parse back
    pipe = tlnlp.load_pipeline(out)
    rows = [json.loads(line) for line in (out / TARGET_PREDICTIONS).read_text().splitlines()]
    for row in rows[:5]:
        scores = {s["label"]: s["score"] for s in pipe(row["text"], top_k=None)}
        assert scores["positive"] == pytest.approx(row["scores"]["positive"], abs=3e-6)


def test_lambda_zero_is_exactly_source_only_training_and_dann_is_not(tmp_path, tiny_bert_dir):
    sequential = ("--train_sampling_strategy", "sequential", "--save_strategy", "no")
    source_only = _main(tiny_bert_dir, tmp_path / "zero", "--domain_loss_weight", "0", *sequential)
    adapted = _main(tiny_bert_dir, tmp_path / "dann", *sequential)
    plain_args = _source_args(tiny_bert_dir, tmp_path / "plain", *sequential)
    classification = load_recipe("classification").main(*parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs,
                                                                     args=plain_args))
    weights = {name: load_file(str(tmp_path / name / "model.safetensors")) for name in ("zero", "dann", "plain")}
    # the target rows share the batches, but with λ = 0 no gradient of theirs reaches the classifier
    for key, value in weights["plain"].items():
        assert torch.allclose(weights["zero"][key], value, atol=1e-5), key
    assert source_only["test_accuracy"] == classification["test_accuracy"]
    assert source_only["eval_loss"] == pytest.approx(classification["eval_loss"], rel=1e-4)
    encoder = [k for k in weights["plain"] if k.startswith("bert.encoder.")]
    assert any(not torch.allclose(weights["dann"][k], weights["plain"][k], atol=1e-4) for k in encoder)
    assert source_only["dann_final_lambda"] == 0.0 and adapted["dann_final_lambda"] > 0.9
    card = (tmp_path / "zero" / "README.md").read_text()
    assert "Source-only baseline (λ_max = 0)" in card


def test_lora_run_trains_adapters_heads_and_the_domain_classifier(tmp_path, tiny_bert_dir):
    out = tmp_path / "lora"
    metrics = _main(tiny_bert_dir, out, "--method", "lora", "--lora_r", "4")
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    saved = load_file(str(out / "adapter_model.safetensors"))
    assert saved and all("lora_" in k or "classifier" in k or "pooler" in k for k in saved), sorted(saved)[:5]
    assert metrics["train_trainable_parameters"] < metrics["train_total_parameters"] / 5
    assert "target_test_accuracy" in metrics and "a_distance_after" in metrics
    results = _json(out / RESULTS_FILE)
    assert results["target_test"]["samples"] == 40 and results["a_distance"]["before"]["rows_per_domain"] == 40
    assert "## Domain adaptation" in (out / "README.md").read_text()
    first = load_file(str(out / "checkpoint-12" / HEAD_FILE))
    assert not torch.equal(first["net.3.weight"], load_file(str(out / "checkpoint-24" / HEAD_FILE))["net.3.weight"])
    pipe = tlnlp.load_pipeline(out)
    assert pipe("a gripping, beautifully shot film")[0]["label"] in ("negative", "positive")


def test_a_text_file_target(tmp_path, tiny_bert_dir):
    from tlnlp.data import load_text_data

    texts = load_text_data(DataArgs(dataset_name="bundled:tweet_sentiment")).train[:150]
    path = tmp_path / "tweets.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    metrics = _main(tiny_bert_dir, out, target=("--target_text_file", str(path)))
    results = _json(out / RESULTS_FILE)
    assert results["target"]["name"] == "tweets.txt" and results["target"]["unlabelled_texts"] == 135
    assert results["target"]["held_out_texts"] == 15 and results["target_test"] is None
    assert results["a_distance"]["before"]["rows_per_domain"] == 15
    assert not (out / TARGET_PREDICTIONS).exists() and not any(k.startswith("target_test") for k in metrics)
    assert "no target test metrics: the target is a text file" in (out / "README.md").read_text()


class _Killed(Exception):
    pass


class _Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 6:
            raise _Killed("simulated interruption after checkpoint-4")


def test_resume_after_an_interruption_matches_the_uninterrupted_run(tmp_path, tiny_bert_dir):
    extra = ("--train_sampling_strategy", "sequential", "--save_strategy", "steps", "--save_steps", "4")
    whole = _main(tiny_bert_dir, tmp_path / "whole", *extra)
    out = tmp_path / "interrupted"
    with pytest.raises(_Killed):
        run_domain_adaptation(*parse_args(*TYPES, args=_args(tiny_bert_dir, out, *extra)), callbacks=[_Interrupt()])
    assert (out / "checkpoint-4" / HEAD_FILE).is_file() and not (out / RESULTS_FILE).exists()
    resumed = _main(tiny_bert_dir, out, *extra, "--resume_from_checkpoint", "last")
    for key in ("eval_loss", "test_loss", "target_test_loss", "a_distance_before", "a_distance_after"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-4, abs=1e-6), key
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    # a checkpoint without the domain classifier cannot be resumed
    (out / "checkpoint-24" / HEAD_FILE).unlink()
    with pytest.raises(CheckpointError, match="no domain_classifier.safetensors.*Fix"):
        _main(tiny_bert_dir, out, *extra, "--resume_from_checkpoint", str(out / "checkpoint-24"))


def test_bad_input_is_refused_before_anything_is_written(tmp_path, tiny_bert_dir):
    multi = tmp_path / "multi.csv"
    multi.write_text("text,label\n" + "".join(f"row {i},{'a|b' if i % 2 else 'a'}\n" for i in range(40)),
                     encoding="utf-8")
    parsed = parse_args(*TYPES, args=_args(tiny_bert_dir, tmp_path / "multi_out", "--label_separator", "|",
                                           source=("--train_file", str(multi))))
    with pytest.raises(DataError, match="multi-label.*single-label"):
        run_domain_adaptation(*parsed)
    with pytest.raises(DomainAdaptationError, match="method='feature_extraction'.*--method full"):
        _main(tiny_bert_dir, tmp_path / "fe_out", "--method", "feature_extraction")
    assert not (tmp_path / "multi_out").exists() and not (tmp_path / "fe_out").exists()


def test_user_errors_exit_cleanly_naming_the_flag(tmp_path, tiny_bert_dir):
    table = tmp_path / "target.csv"
    table.write_text("id,body\n" + "".join(f"{i},text {i}\n" for i in range(50)), encoding="utf-8")
    out = tmp_path / "never"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = str(ROOT / "recipes" / "domain_adaptation.py")
    proc = subprocess.run([sys.executable, script, *_args(tiny_bert_dir, out, target=("--target_text_file",
                                                                                      str(table)))],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Target") and "target.csv" in last and "Traceback" not in proc.stderr
    assert "for --target_text_column. Columns found: 'id', 'body'" in last
    assert not out.exists()
    proc = subprocess.run([sys.executable, script, *_args(tiny_bert_dir, out), "--target_text_file", str(table)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert proc.returncode == 2 and "both are set" in proc.stderr and "Traceback" not in proc.stderr


def _launch(num_processes: int, out: Path, model_dir: Path, per_device_batch: int) -> dict:
    args = _args(model_dir, out, "--per_device_train_batch_size", str(per_device_batch), "--save_strategy", "no",
                 "--domain_dropout", "0")
    launch_recipe("domain_adaptation", num_processes, args)
    return _json(out / "all_results.json")


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path, tiny_bert_dir):
    one = _launch(1, tmp_path / "one", tiny_bert_dir, per_device_batch=8)
    two = _launch(2, tmp_path / "two", tiny_bert_dir, per_device_batch=4)  # the same global batch of 8 pairs
    assert _json(tmp_path / "two" / "trainer_state.json")["global_step"] == 24
    # the domain classifier's gradients are averaged across processes like the model's
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-3)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-3)
    assert abs(two["target_test_accuracy"] - one["target_test_accuracy"]) <= 0.03
    assert two["a_distance_before"] == pytest.approx(one["a_distance_before"])
    assert len((tmp_path / "two" / TARGET_PREDICTIONS).read_text().splitlines()) == 40  # one writer
