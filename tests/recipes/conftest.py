"""Fixtures for running recipes: a tiny saved model folder and a helper to run a recipe's main in-process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"


def load_recipe(name: str):
    """Import ``recipes/<name>.py`` as a module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, tokenizer):
    """A 2-layer hidden-32 BERT with the bundled tokenizer, saved like a Hub folder; dropout off (deterministic)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from tests.conftest import tiny_config

    folder = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    cfg = tiny_config("bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def recipe_args(model_dir, out_dir, *extra: str) -> list[str]:
    """Command-line flags for a fast classification run on a small bundled subset."""
    return [
        "--model_name_or_path", str(model_dir), "--dataset_name", "bundled:movie_sentiment",
        "--max_train_samples", "96", "--max_eval_samples", "32", "--max_predict_samples", "40",
        "--max_seq_length", "32", "--output_dir", str(out_dir), "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "16", "--learning_rate", "1e-3", "--num_train_epochs", "2",
        "--logging_steps", "2", "--report_to", "none", "--dataloader_num_workers", "0", *extra,
    ]


def launch_recipe(recipe: str, num_processes: int, args: list[str]) -> None:
    """Run ``recipes/<recipe>.py`` through ``accelerate launch`` with 1 or 2 CPU processes (gloo); fail with its log."""
    import os
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = "cpu_2proc.yaml" if num_processes == 2 else "cpu_1proc.yaml"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "recipes" / "accelerate" / config), "--main_process_port", str(port),
           str(ROOT / "recipes" / f"{recipe}.py"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
