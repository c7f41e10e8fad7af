"""HF stage flags in the classification recipe, and the recipes run from Python and from the installed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

import tlnlp
from tests.recipes.conftest import ROOT, load_recipe, recipe_args
from tlnlp.api import RecipeError, config_path, flags_to_argv, recipe_names, shipped_configs
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)


def _main(args):
    return load_recipe("classification").main(*parse_args(*TYPES, args=args))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("stages") / "trained"
    return out, _main(recipe_args(tiny_bert_dir, out))


def test_evaluation_only_scores_the_trained_folder_and_trains_nothing(tmp_path, trained):
    run, metrics = trained
    out = tmp_path / "eval_only"
    found = _main([*recipe_args(run, out), "--do_eval", "--do_predict"])
    written = sorted(p.name for p in out.iterdir())
    assert written == ["all_results.json", "environment.json", "eval_results.json", "predictions.jsonl",
                       "run_config.yaml", "test_results.json"], "no model, no checkpoint, no train_results.json"
    evaluated = json.loads((out / "eval_results.json").read_text())
    for key in ("eval_accuracy", "eval_f1_macro", "eval_mcc"):
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-6), key  # the pipeline scores as the Trainer
    assert found["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    predictions = (out / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == metrics["test_samples"]
    assert yaml.safe_load((out / "run_config.yaml").read_text())["do_eval"] is True


def test_evaluation_only_on_data_with_other_labels_is_refused(tmp_path, trained):
    run, _ = trained
    args = [a if a != "bundled:movie_sentiment" else "bundled:trec6" for a in recipe_args(run, tmp_path / "o")]
    with pytest.raises(ValueError, match="The model predicts label .* which the data does not have"):
        _main([*args, "--do_eval"])


def test_train_only_skips_the_final_scoring(tmp_path, tiny_bert_dir):
    out = tmp_path / "train_only"
    metrics = _main([*recipe_args(tiny_bert_dir, out, "--max_steps", "2", "--eval_strategy", "no"), "--do_train"])
    assert (out / "model.safetensors").is_file() and (out / "train_results.json").is_file()
    assert not (out / "eval_results.json").exists() and not (out / "test_results.json").exists()
    assert not any(key.startswith(("eval_", "test_")) for key in metrics)


def test_shipped_recipes_and_configs_are_found_by_name(tmp_path):
    assert {"classification", "compare", "question_answering", "ulmfit"} <= set(recipe_names())
    assert "classification/movie_minilm.yaml" in shipped_configs("classification")
    for name in ("movie_minilm", "classification/movie_minilm.yaml", "movie_minilm.yaml"):
        assert config_path("classification", name).endswith("movie_minilm.yaml")
    own = tmp_path / "mine.yaml"
    own.write_text("seed: 1\n")
    assert config_path("classification", str(own)) == str(own)
    with pytest.raises(RecipeError, match="recipe='clasification' is not a tlnlp recipe"):
        tlnlp.train("clasification")
    with pytest.raises(RecipeError, match="classification/movie_minilm.yaml"):
        config_path("classification", "movie")
    assert flags_to_argv("classification", max_steps=2, fp16=False, report_to=["none"], seed=None) == [
        "--max_steps", "2", "--fp16", "false", "--report_to", "none"]
    with pytest.raises(RecipeError, match="only a YAML config"):
        flags_to_argv("staged", stages=[{"dataset": "bundled:trec6"}])


def test_tlnlp_train_runs_a_recipe_from_python(tmp_path, tiny_bert_dir, monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    out = tmp_path / "api"
    flags = recipe_args(tiny_bert_dir, out, "--max_steps", "2")
    kwargs = {flags[i][2:]: flags[i + 1] for i in range(0, len(flags), 2)}
    metrics = tlnlp.train("classification", **kwargs)
    assert "test_accuracy" in metrics and (out / "model.safetensors").is_file()
    assert (out / "run_config.yaml").read_text().splitlines()[1] == (
        "#   tlnlp train classification --config run_config.yaml")
    card = (out / "README.md").read_text()
    assert f"tlnlp train classification --model_name_or_path {tiny_bert_dir}" in card
    with pytest.raises(RecipeError, match="Unknown flag '--lerning_rate'"):
        tlnlp.train("classification", lerning_rate=1e-3, **kwargs)


@pytest.mark.slow
def test_the_installed_command_runs_a_recipe_outside_the_checkout(tmp_path, tiny_bert_dir):
    out = tmp_path / "cli"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ACCELERATE_MIXED_PRECISION", None)
    cmd = [sys.executable, "-m", "tlnlp", "train", "classification", "--config", "movie_minilm",
           *recipe_args(tiny_bert_dir, out, "--max_steps", "2")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "run_config.yaml").read_text().splitlines()[1].endswith("tlnlp train classification --config "
                                                                          "run_config.yaml")
    assert "--config movie_minilm " in (out / "README.md").read_text()
    bad = subprocess.run([sys.executable, "-m", "tlnlp", "train", "classification", "--config", "nope"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: config='nope' is neither a file")
    assert str(ROOT) not in proc.stdout
