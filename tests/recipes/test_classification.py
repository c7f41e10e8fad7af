"""The classification recipe end to end: in-process, its outputs, its safety rules, and 2-process DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.recipes.conftest import ROOT, launch_recipe, load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)
CONFIGS = sorted((ROOT / "recipes" / "configs" / "classification").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first.startswith("# accelerate launch") and "recipes/classification.py" in first
    assert f"--config recipes/configs/classification/{config.name}" in first
    extra = []
    if "bf16: true" in config.read_text() and not torch.cuda.is_available():
        extra = ["--bf16", "false"]  # GPU configs: TrainingArguments refuses bf16 on a CPU-only machine
    parsed = parse_args(*TYPES, args=["--config", str(config), *extra])
    assert parsed[3].output_dir


def _run(tmp_path, tiny_bert_dir, *extra, name="run"):
    recipe = load_recipe("classification")
    out = tmp_path / name
    metrics = recipe.main(*parse_args(*TYPES, args=recipe_args(tiny_bert_dir, out, *extra)))
    return out, metrics


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_bert_dir):
    tmp = tmp_path_factory.mktemp("cls")
    return _run(tmp, tiny_bert_dir, "--token", "hf_PLANTEDSECRET", "--report_to", "tensorboard")


def test_run_writes_every_output(finished_run):
    out, metrics = finished_run
    for name in ("all_results.json", "train_results.json", "eval_results.json", "test_results.json",
                 "model.safetensors", "config.json", "tokenizer.json", "run_config.yaml", "environment.json",
                 "predictions.jsonl", "confusion_matrix.png", "training_curves.png", "README.md",
                 "trainer_state.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin")), "no pickle files: weights in safetensors, settings in run_config.yaml"
    results = json.loads((out / "all_results.json").read_text())
    for key in ("eval_accuracy", "eval_f1_macro", "test_accuracy", "test_mcc", "train_loss",
                "train_trainable_parameters"):
        assert key in results, key
    assert results["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 40
    first = json.loads(lines[0])
    assert first["label"] in ("negative", "positive") and first["prediction"] in ("negative", "positive")
    correct = sum(json.loads(line)["label"] == json.loads(line)["prediction"] for line in lines)
    assert correct / 40 == pytest.approx(results["test_accuracy"])  # predictions.jsonl agrees with the metric
    env = json.loads((out / "environment.json").read_text())
    assert env["seed"] == 42 and len(env["data_fingerprint"]) == 64 and env["packages"]["transformers"]
    assert list((out / "runs").rglob("events.out.tfevents.*")), "TensorBoard logs expected"
    card = (out / "README.md").read_text()
    assert "negative" in card and "positive" in card and "accelerate launch" in card
    cfg = yaml.safe_load((out / "run_config.yaml").read_text())
    assert cfg["dataset_name"] == "bundled:movie_sentiment" and cfg["max_train_samples"] == 96


def test_no_token_in_any_written_file(finished_run):
    out, _ = finished_run
    for path in out.rglob("*"):
        if path.is_file():
            assert b"PLANTEDSECRET" not in path.read_bytes(), path


def test_load_pipeline_and_cli_predict_use_real_label_names(finished_run):
    import tlnlp

    out, _ = finished_run
    pipe = tlnlp.load_pipeline(out)
    result = pipe("a warm, funny and moving film")[0]
    assert result["label"] in ("negative", "positive") and 0 <= result["score"] <= 1
    # predictions.jsonl row i is the prediction for test row i: the pipeline gives the same scores text by text
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    spread = max(r["scores"]["positive"] for r in rows) - min(r["scores"]["positive"] for r in rows)
    assert spread > 2e-5  # scores differ between rows (beyond the 6 decimals written), so a reordering would show
    for row in rows[:12]:
        scores = {s["label"]: s["score"] for s in pipe(row["text"], top_k=None)}
        assert scores["positive"] == pytest.approx(row["scores"]["positive"], abs=3e-6), row["text"]
    proc = subprocess.run([sys.executable, "-m", "tlnlp", "predict", str(out), "a dull mess", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["predictions"][0]["label"] in ("negative", "positive")


def test_non_empty_output_dir_is_refused_then_resume_and_overwrite_work(finished_run, tiny_bert_dir):
    from tlnlp.training import OutputDirError

    out, _ = finished_run
    before = (out / "all_results.json").read_bytes()
    with pytest.raises(OutputDirError, match="overwrite_output_dir"):
        _run(out.parent, tiny_bert_dir, name=out.name)
    assert (out / "all_results.json").read_bytes() == before  # nothing touched
    # resuming from the last checkpoint finishes the (already complete) schedule and rewrites the outputs
    _, metrics = _run(out.parent, tiny_bert_dir, "--resume_from_checkpoint", "last", name=out.name)
    assert "test_accuracy" in metrics


def test_resume_matches_uninterrupted_run(tmp_path, tiny_bert_dir):
    full_dir, full = _run(tmp_path, tiny_bert_dir, "--train_sampling_strategy", "sequential", name="full")
    # checkpoint-12 is what a run killed during its second epoch leaves behind (save_strategy=epoch)
    ckpt = full_dir / "checkpoint-12"
    assert ckpt.is_dir()
    _, resumed = _run(tmp_path, tiny_bert_dir, "--train_sampling_strategy", "sequential",
                      "--resume_from_checkpoint", str(ckpt), name="resumed")
    assert resumed["test_accuracy"] == pytest.approx(full["test_accuracy"])
    assert resumed["eval_loss"] == pytest.approx(full["eval_loss"], rel=1e-4)


def test_frozen_backbone_keeps_backbone_bit_identical(tmp_path, tiny_bert_dir):
    from safetensors.torch import load_file

    out, metrics = _run(tmp_path, tiny_bert_dir, "--method", "frozen_backbone")
    before = load_file(str(Path(tiny_bert_dir) / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    changed = [k for k in after if k in before and not before[k].equal(after[k])]
    assert changed and all(k.startswith(("classifier.", "bert.pooler.")) for k in changed), changed
    assert metrics["train_trainable_parameters"] < metrics["train_total_parameters"] / 10


def _launch(num_processes: int, out: Path, model_dir: Path, per_device_batch: int) -> dict:
    args = recipe_args(model_dir, out, "--per_device_train_batch_size", str(per_device_batch), "--save_strategy", "no")
    launch_recipe("classification", num_processes, args)
    return json.loads((out / "all_results.json").read_text())


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path, tiny_bert_dir):
    one = _launch(1, tmp_path / "one", tiny_bert_dir, per_device_batch=8)
    # same global batch of 8, length-grouped batches (tlnlp's default); that grouping gives every step the same
    # examples whatever the number of processes (tests/unit/training checks it on data spanning many groups)
    two = _launch(2, tmp_path / "two", tiny_bert_dir, per_device_batch=4)
    state = json.loads((tmp_path / "two" / "trainer_state.json").read_text())
    assert state["global_step"] == json.loads((tmp_path / "one" / "trainer_state.json").read_text())["global_step"]
    # same loss scale (transformers' token averaging across devices would double it) and the same model
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-3)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-3)
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= 0.01
    # only the main process writes: one prediction per test row, not one per process, in the dataset's order
    rows = {n: [json.loads(line) for line in (tmp_path / n / "predictions.jsonl").read_text().splitlines()]
            for n in ("one", "two")}
    assert len(rows["two"]) == 40
    assert [r["text"] for r in rows["two"]] == [r["text"] for r in rows["one"]]
    for a, b in zip(rows["one"], rows["two"], strict=True):
        assert a["scores"]["positive"] == pytest.approx(b["scores"]["positive"], abs=1e-2)


def test_user_errors_exit_cleanly_and_write_nothing(tmp_path):
    out = tmp_path / "never"
    cmd = [sys.executable, str(ROOT / "recipes" / "classification.py"), "--dataset_name", "bundled:movie_sentment",
           "--output_dir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "movie_sentiment" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
