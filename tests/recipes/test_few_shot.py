"""The few-shot recipe end to end: per-run results, spec version, and the outputs of a fine-tuned run."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.recipes.conftest import ROOT, load_recipe
from tlnlp.config import DataArgs, EvaluationArgs, ModelArgs, parse_args
from tlnlp.fewshot.args import FewShotArgs

TYPES = (ModelArgs, DataArgs, FewShotArgs, EvaluationArgs)
CONFIGS = sorted((ROOT / "recipes" / "configs" / "few_shot").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first.startswith("# accelerate launch") and "recipes/few_shot.py" in first
    assert f"--config recipes/configs/few_shot/{config.name}" in first
    model_args, data_args, fs_args, eval_args = parse_args(*TYPES, args=["--config", str(config)])
    assert eval_args.output_dir and data_args.dataset_name and fs_args.content_free == ["N/A", "", "[MASK]"]
    from tlnlp.fewshot import resolve_spec

    assert resolve_spec(fs_args.prompt_spec, data_args.dataset_name).version


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    """A tiny Llama with a byte-level BPE tokenizer, saved like a Hub folder."""
    import torch
    from transformers import AutoModelForCausalLM

    from tests.conftest import tiny_config
    from tests.unit.fewshot.conftest import bpe_tokenizer

    tokenizer = bpe_tokenizer.__wrapped__()
    folder = tmp_path_factory.mktemp("tiny_lm")
    torch.manual_seed(0)
    cfg = tiny_config("llama", vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _args(model_dir, out, *extra):
    return ["--model_name_or_path", str(model_dir), "--dataset_name", "bundled:movie_sentiment",
            "--max_predict_samples", "12", "--output_dir", str(out), "--shots", "1", "--seeds", "0", "1",
            "--orders", "2", "--batch_size", "8", *extra]


def test_run_writes_results_per_run_and_spec_version(tmp_path, tiny_lm_dir):
    out = tmp_path / "fs"
    metrics = load_recipe("few_shot").main(*parse_args(*TYPES, args=_args(tiny_lm_dir, out)))
    for name in ("test_results.json", "all_results.json", "predictions.jsonl", "confusion_matrix.png",
                 "run_config.yaml", "environment.json", "README.md"):
        assert (out / name).is_file(), name
    results = json.loads((out / "all_results.json").read_text())
    assert results["prompt_spec"] == "sentiment" and results["prompt_spec_version"] == "1.1.0"
    assert results["runs"] == 4 and len(results["few_shot"]["runs"]) == 4
    assert {(r["seed"], r["order"]) for r in results["few_shot"]["runs"]} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for key in ("test_raw_accuracy_mean", "test_raw_accuracy_std", "test_calibrated_accuracy_min",
                "test_calibrated_f1_macro_max"):
        assert key in results and key in metrics
    runs = [r["metrics"]["sum_calibrated"]["accuracy"] for r in results["few_shot"]["runs"]]
    assert results["test_calibrated_accuracy_max"] == pytest.approx(max(runs), abs=1e-6)
    assert metrics["test_samples"] == 12 and 0 <= metrics["test_accuracy"] <= 1
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 12
    assert len(list((out / "few_shot_runs").glob("run_seed*_order*.json"))) == 4  # what a resumed run reuses
    card = (out / "README.md").read_text()
    assert "sentiment" in card and "1.1.0" in card and "| seed | order |" in card
    config = yaml.safe_load((out / "run_config.yaml").read_text())
    assert config["shots"] == 1 and config["seeds"] == [0, 1] and config["prompt_spec"] == "auto"


def test_bad_spec_file_is_one_clear_error(tmp_path, tiny_lm_dir, capsys):
    from tlnlp.errors import user_errors

    spec = tmp_path / "spec.yaml"
    spec.write_text('version: 1.0.0\ntemplate: "Review: {text}\\nSentiment: {label}"\n'
                    "verbalizer: {negative: bad}\n")
    args = parse_args(*TYPES, args=[*_args(tiny_lm_dir, tmp_path / "o"), "--prompt_spec", str(spec)])
    with pytest.raises(SystemExit) as exit_info, user_errors():
        load_recipe("few_shot").main(*args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: Prompt spec 'spec'" in err and "['positive']" in err
    assert not (tmp_path / "o" / "all_results.json").exists()


@pytest.mark.slow
def test_bundled_smollm2_few_shot(tmp_path):
    out = tmp_path / "smol"
    args = ["--model_name_or_path", "bundled:smollm2", "--dataset_name", "bundled:movie_sentiment",
            "--max_predict_samples", "16", "--output_dir", str(out), "--shots", "1", "--seeds", "0",
            "--batch_size", "16"]
    metrics = load_recipe("few_shot").main(*parse_args(*TYPES, args=args))
    assert metrics["test_samples"] == 16 and (out / "predictions.jsonl").is_file()
    results = json.loads((out / "all_results.json").read_text())
    assert results["few_shot"]["runs"][0]["prefix_tokens"] > 20
