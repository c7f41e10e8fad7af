"""ULMFiT end to end: the two-stage recipe, resume mid-schedule, and frozen groups under 2-process DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.recipes.conftest import ROOT, load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

CONFIGS = sorted((ROOT / "recipes" / "configs" / "ulmfit").glob("*.yaml"))
CLS_TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)
# tiny BERT: head trains from step 0, block_1 from step 4, block_0 from step 8, embeddings from step 12
UNFREEZE = ("--method", "ulmfit", "--gradual_unfreezing", "steps", "--unfreeze_every_steps", "4")


def _ulmfit_types():
    return (*CLS_TYPES, load_recipe("ulmfit").LmStageArgs)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first.startswith("# accelerate launch") and f"--config recipes/configs/ulmfit/{config.name}" in first
    parsed = parse_args(*_ulmfit_types(), args=["--config", str(config)], defaults={"method": "ulmfit"})
    assert parsed[2].ulmfit_settings().discriminative_factor == pytest.approx(1 / 0.95)  # the transformer preset


def test_two_stage_recipe_end_to_end_and_resume_skips_the_finished_stage(tmp_path, tiny_bert_dir):
    recipe = load_recipe("ulmfit")
    out = tmp_path / "ulmfit"
    flags = recipe_args(tiny_bert_dir, out, "--lm_max_steps", "6", "--lm_learning_rate", "3e-3",
                        "--perplexity_max_texts", "16", "--lm_head_warmup_steps", "2", "--max_train_samples", "48")
    metrics = recipe.main(*parse_args(*_ulmfit_types(), args=flags, defaults={"method": "ulmfit"}))
    lm = json.loads((out / "lm_adaptation" / "lm_results.json").read_text())
    assert lm["measure"] == "pseudo_perplexity"
    results = json.loads((out / "all_results.json").read_text())
    assert results["lm_perplexity_after"] == pytest.approx(lm["perplexity_after"])
    assert "test_accuracy" in results and metrics["test_accuracy"] == pytest.approx(results["test_accuracy"])
    for name in ("model.safetensors", "learning_rates.png", "predictions.jsonl", "README.md", "run_config.yaml"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "ULMFiT" in card
    # the card reproduces the run with the recipe that ran (it named the classification recipe before issue 14)
    assert "recipes/ulmfit.py --config run_config.yaml" in card and "recipes/classification.py" not in card
    assert "lm_num_train_epochs" in (out / "run_config.yaml").read_text()  # the stage-1 flags are part of the run
    # LM stage 1 trained on every training text of the task, not only the 48 labelled ones
    env = json.loads((out / "lm_adaptation" / "environment.json").read_text())
    assert "training texts" in env["data_name"]
    stamp = (out / "lm_adaptation" / "model.safetensors").stat().st_mtime_ns
    recipe.main(*parse_args(*_ulmfit_types(), args=[*flags, "--resume_from_checkpoint", "last"],
                            defaults={"method": "ulmfit"}))
    assert (out / "lm_adaptation" / "model.safetensors").stat().st_mtime_ns == stamp  # stage 1 not redone


def _classify(out, model_dir, *extra):
    recipe = load_recipe("classification")
    args = recipe_args(model_dir, out, "--train_sampling_strategy", "sequential", "--logging_steps", "1", *UNFREEZE,
                       *extra)
    return recipe.main(*parse_args(*CLS_TYPES, args=args))


def _rates(out: Path) -> dict[int, dict[str, float]]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return {e["step"]: {k: v for k, v in e.items() if k.startswith("lr/")} for e in history if "lr/head" in e}


def test_resumed_run_continues_with_the_same_thaw_state_rates_and_weights(tmp_path, tiny_bert_dir):
    full_dir = tmp_path / "full"
    every_6 = ("--save_strategy", "steps", "--save_steps", "6", "--save_total_limit", "5")
    full = _classify(full_dir, tiny_bert_dir, *every_6)
    # checkpoint-6 is what a run killed at step 6 leaves: head and block_1 thawed, block_0 and embeddings frozen
    ckpt = full_dir / "checkpoint-6"
    resumed_dir = tmp_path / "resumed"
    resumed = _classify(resumed_dir, tiny_bert_dir, *every_6, "--resume_from_checkpoint", str(ckpt))
    a, b = _rates(full_dir), _rates(resumed_dir)
    assert sorted(b) == list(range(1, 25))  # steps 1..6 come with the checkpoint's state, 7..24 are new
    for step in b:
        assert b[step] == pytest.approx(a[step], rel=1e-12), step
    assert b[9]["lr/block_0"] > 0 and b[12]["lr/embeddings"] == 0 and b[13]["lr/embeddings"] > 0
    final_a, final_b = load_file(str(full_dir / "model.safetensors")), load_file(str(resumed_dir / "model.safetensors"))
    for key in final_a:
        assert torch.allclose(final_a[key], final_b[key], atol=1e-6), key
    assert resumed["eval_loss"] == pytest.approx(full["eval_loss"], rel=1e-5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flags(out: Path, model_dir: Path, per_device_batch: int) -> list[str]:
    return recipe_args(model_dir, out, "--per_device_train_batch_size", str(per_device_batch), "--save_strategy", "no",
                       "--max_steps", "10", "--logging_steps", "1", *UNFREEZE)


def _launch_two(out: Path, model_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "recipes" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", str(_free_port()),
           str(ROOT / "recipes" / "classification.py"), *_flags(out, model_dir, per_device_batch=4)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return _rates(out)


@pytest.mark.slow
def test_two_processes_keep_frozen_groups_bit_identical_with_the_same_rates(tmp_path, tiny_bert_dir):
    # same global batch of 8: one process in-process, two through the real `accelerate launch` (gloo DDP)
    load_recipe("classification").main(*parse_args(*CLS_TYPES, args=_flags(tmp_path / "one", tiny_bert_dir, 8)))
    one = _rates(tmp_path / "one")
    two = _launch_two(tmp_path / "two", tiny_bert_dir)
    assert sorted(two) == list(range(1, 11))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-12), step  # every group's rate at every step
    start = load_file(str(tiny_bert_dir / "model.safetensors"))
    end = load_file(str(tmp_path / "two" / "model.safetensors"))
    embeddings = [k for k in start if k.startswith("bert.embeddings.")]
    assert embeddings and all(torch.equal(start[k], end[k]) for k in embeddings)  # never thawed in 10 steps
    for prefix in ("bert.encoder.layer.0.", "bert.encoder.layer.1.", "classifier."):
        assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith(prefix)), prefix
    one_end = load_file(str(tmp_path / "one" / "model.safetensors"))
    for key in end:  # and the 2-process model is the 1-process model
        assert torch.allclose(one_end[key], end[key], atol=1e-5), key
