"""The multi-task recipe end to end on a tiny BERT: heads, per-task metrics, folders, pipelines, resume, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from transformers import TrainerCallback

import tlnlp
from tests.recipes.conftest import ROOT, launch_recipe, load_recipe
from tlnlp.config import ModelArgs, TrainingArgs, parse_args
from tlnlp.inference import RunTaskError
from tlnlp.methods import MethodArgs
from tlnlp.multitask import MultiTaskArgs, build_task_specs, run_multitask
from tlnlp.training import OutputDirError

TYPES = (ModelArgs, MethodArgs, MultiTaskArgs, TrainingArgs)
CONFIGS = sorted((ROOT / "recipes" / "configs" / "multitask").glob("*.yaml"))
TASKS = ["dataset=bundled:movie_sentiment,train_samples_per_class=8", "dataset=bundled:trec6,max_train_samples=64",
         "dataset=bundled:amazon_sentiment,max_train_samples=48"]
NAMES = ["movie_sentiment", "trec6", "amazon_sentiment"]
TREC = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first == ("# accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/multitask.py "
                     f"--config recipes/configs/multitask/{config.name}")
    model_args, method_args, mt_args, train_args = parse_args(*TYPES, args=["--config", str(config)])
    specs = build_task_specs(mt_args.tasks, mt_args.data_defaults())
    assert len(specs) >= 2 and train_args.output_dir and model_args.model_name_or_path
    if config.stem == "sentiment_minilm":
        assert [s.name for s in specs] == ["movie_sentiment", "amazon_sentiment", "tweet_sentiment"]
        assert specs[0].data_args.train_samples_per_class == 8
        assert [s.data_args.max_train_samples for s in specs[1:]] == [1000, 1000]
        assert all(s.data_args.max_predict_samples == 500 for s in specs)
        assert (mt_args.sampling, mt_args.temperature, mt_args.target_task) == ("temperature", 2.0, "movie_sentiment")
        assert method_args.method == "full"


def _args(model_dir, out, *extra: str, tasks=TASKS) -> list[str]:
    return ["--model_name_or_path", str(model_dir), "--output_dir", str(out), "--max_seq_length", "32",
            "--max_eval_samples", "32", "--max_predict_samples", "40", "--per_device_train_batch_size", "8",
            "--per_device_eval_batch_size", "16", "--learning_rate", "1e-3", "--num_train_epochs", "2",
            "--logging_steps", "2", "--report_to", "none", "--dataloader_num_workers", "0", "--tasks", *tasks, *extra]


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("multitask") / "run"
    recipe = load_recipe("multitask")
    metrics = recipe.main(*parse_args(*TYPES, args=_args(tiny_bert_dir, out, "--baseline", "single_task")))
    return out, metrics


def test_run_writes_a_classifier_folder_per_task_and_the_run_files(finished):
    out, _ = finished
    for name in ("all_results.json", "eval_results.json", "test_results.json", "train_results.json",
                 "multitask_results.json", "multitask.json", "run_config.yaml", "environment.json", "README.md",
                 "trainer_state.json", "training_curves.png"):
        assert (out / name).is_file(), name
    for task in NAMES:
        folder = out / "tasks" / task
        for name in ("config.json", "model.safetensors", "tokenizer.json", "eval_results.json", "test_results.json",
                     "predictions.jsonl", "confusion_matrix.png", "run_config.yaml", "environment.json", "README.md"):
            assert (folder / name).is_file(), folder / name
        assert not list(folder.glob("*.bin")) and not (folder / "adapter_config.json").exists()
    assert _json(out / "multitask.json")["tasks"] == {t: f"tasks/{t}" for t in NAMES}


def test_each_head_has_its_task_labels(finished):
    out, _ = finished
    labels = {t: list(_json(out / "tasks" / t / "config.json")["id2label"].values()) for t in NAMES}
    assert labels == {"movie_sentiment": ["negative", "positive"], "trec6": TREC,
                      "amazon_sentiment": ["negative", "positive"]}
    shapes = {t: tuple(load_file(str(out / "tasks" / t / "model.safetensors"))["classifier.weight"].shape)
              for t in NAMES}
    assert shapes == {"movie_sentiment": (2, 32), "trec6": (6, 32), "amazon_sentiment": (2, 32)}
    encoders = [load_file(str(out / "tasks" / t / "model.safetensors"))["bert.embeddings.word_embeddings.weight"]
                for t in NAMES]
    assert encoders[0].equal(encoders[1]) and encoders[0].equal(encoders[2])  # one shared encoder


def test_every_evaluation_and_the_final_results_are_per_task(finished):
    out, metrics = finished
    history = _json(out / "trainer_state.json")["log_history"]
    evaluations = sorted({e["step"] for e in history if any(k.startswith("eval_") for k in e)})
    assert evaluations == [16, 32]  # one per epoch: (16 + 64 + 48 rows) / 8 = 16 blocks an epoch
    for step in evaluations:
        found = {k: v for e in history if e["step"] == step for k, v in e.items()}
        per_task = [found[f"eval_{t}_accuracy"] for t in NAMES]
        assert found["eval_accuracy"] == pytest.approx(sum(per_task) / 3)
    results = _json(out / "multitask_results.json")
    for record, task in zip(results["tasks"], NAMES, strict=True):
        own = _json(out / "tasks" / task / "test_results.json")
        assert record["name"] == task and record["metrics"]["test_accuracy"] == own["test_accuracy"]
        assert metrics[f"test_{task}_accuracy"] == own["test_accuracy"]
        assert metrics[f"eval_{task}_accuracy"] == _json(out / "tasks" / task / "eval_results.json")["eval_accuracy"]
        rows = [json.loads(line) for line in (out / "tasks" / task / "predictions.jsonl").read_text().splitlines()]
        assert len(rows) == 40 and sum(r["label"] == r["prediction"] for r in rows) / 40 == pytest.approx(
            own["test_accuracy"])
    assert [r["blocks"] for r in results["tasks"]] == [6, 14, 12]  # temperature T=2: 3, 7 and 6 blocks an epoch
    assert results["steps"] == 32 and results["target_task"] == "movie_sentiment"
    assert metrics["target_test_accuracy"] == metrics["test_movie_sentiment_accuracy"]
    assert _json(out / "all_results.json")["test_trec6_accuracy"] == metrics["test_trec6_accuracy"]


def test_single_task_baseline_flags_negative_transfer_per_task(finished):
    out, metrics = finished
    results = _json(out / "multitask_results.json")
    entries = {e["task"]: e for e in results["baseline"]}
    assert list(entries) == NAMES
    for record in results["tasks"]:
        entry = entries[record["name"]]
        alone = _json(out / "baseline_single_task" / record["name"] / "multitask_results.json")
        assert alone["steps"] == entry["steps"] == record["blocks"]  # as many steps as it got in the multi-task run
        assert entry["single_task_accuracy"] == alone["tasks"][0]["metrics"]["test_accuracy"]
        assert entry["gain"] == pytest.approx(entry["multitask_accuracy"] - entry["single_task_accuracy"])
        assert entry["negative_transfer"] == (entry["gain"] < 0)
        assert metrics[f"transfer_gain_{record['name']}"] == pytest.approx(entry["gain"])
    card = (out / "README.md").read_text()
    assert "## Multi-task learning" in card and "single-task accuracy" in card and "temperature sampling" in card
    assert 'task="movie_sentiment"' in card


def test_load_pipeline_gives_each_task_its_labels_and_scores(finished):
    out, _ = finished
    for task, labels in (("trec6", TREC), ("movie_sentiment", ["negative", "positive"])):
        pipe = tlnlp.load_pipeline(out, task=task)
        rows = [json.loads(line) for line in (out / "tasks" / task / "predictions.jsonl").read_text().splitlines()]
        for row in rows[:5]:
            scores = {s["label"]: s["score"] for s in pipe(row["text"], top_k=None)}
            assert sorted(scores) == sorted(labels)
            for label in labels:
                assert scores[label] == pytest.approx(row["scores"][label], abs=3e-6)
    with pytest.raises(RunTaskError, match="task='trec' is not a task.*movie_sentiment, trec6, amazon_sentiment"):
        tlnlp.load_pipeline(out, task="trec")
    with pytest.raises(RunTaskError, match="pick its task with task=<name>"):
        tlnlp.load_pipeline(out)


class _Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 7:
            raise KeyboardInterrupt("simulated interruption")


def _run(model_dir, out, *extra, callbacks=None, tasks=TASKS[:2]):
    parsed = parse_args(*TYPES, args=_args(model_dir, out, "--save_strategy", "steps", "--save_steps", "4", *extra,
                                           tasks=tasks))
    return run_multitask(*parsed, callbacks=callbacks).metrics()


def test_resume_after_an_interruption_matches_the_uninterrupted_run(tmp_path, tiny_bert_dir):
    full = _run(tiny_bert_dir, tmp_path / "full")
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_bert_dir, out, callbacks=[_Interrupt()])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4"]
    with pytest.raises(OutputDirError, match="resume_from_checkpoint last"):
        _run(tiny_bert_dir, out)  # a non-empty folder is refused, pointing at the fix
    with pytest.raises(OutputDirError, match=r"tasks\[1\].data.max_train_samples"):
        _run(tiny_bert_dir, out, "--resume_from_checkpoint", "last",
             tasks=[TASKS[0], "dataset=bundled:trec6,max_train_samples=60"])
    resumed = _run(tiny_bert_dir, out, "--resume_from_checkpoint", "last")
    for key in ("eval_loss", "test_movie_sentiment_loss", "test_trec6_loss"):
        assert resumed[key] == pytest.approx(full[key], rel=1e-5), key
    assert resumed["test_accuracy"] == full["test_accuracy"]


def test_lora_trains_adapter_and_heads_and_saves_merged_task_models(tmp_path, tiny_bert_dir):
    out = tmp_path / "lora"
    metrics = _run(tiny_bert_dir, out, "--method", "lora", "--lora_r", "4", "--max_steps", "6")
    assert metrics["train_trainable_parameters"] < metrics["train_total_parameters"] / 5
    folder = out / "tasks" / "trec6"
    assert (folder / "model.safetensors").is_file() and not (folder / "adapter_config.json").exists()
    pipe = tlnlp.load_pipeline(out, task="trec6")
    row = json.loads((folder / "predictions.jsonl").read_text().splitlines()[0])
    scores = {s["label"]: s["score"] for s in pipe(row["text"], top_k=None)}
    assert sorted(scores) == sorted(TREC) and scores["NUM"] == pytest.approx(row["scores"]["NUM"], abs=3e-6)


def test_user_errors_exit_cleanly_and_write_nothing(tmp_path):
    out = tmp_path / "never"
    cmd = [sys.executable, str(ROOT / "recipes" / "multitask.py"), "--output_dir", str(out), "--tasks",
           "dataset=bundled:trec6", "dataset=bundled:trec6,max_train_samples=10", "--temperature", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "both named 'trec6'" in last and "name=trec6_2" in last
    assert "Traceback" not in proc.stderr and not out.exists()


def _launch(num_processes: int, out: Path, model_dir: Path, per_device_batch: int) -> dict:
    args = _args(model_dir, out, "--per_device_train_batch_size", str(per_device_batch), "--save_strategy", "no")
    launch_recipe("multitask", num_processes, args)
    return _json(out / "all_results.json")


@pytest.mark.slow
def test_two_processes_train_one_task_per_step_like_one_process(tmp_path, tiny_bert_dir):
    one = _launch(1, tmp_path / "one", tiny_bert_dir, per_device_batch=8)
    # block = per-device batch x processes = 8 rows of one task in both launches; each process gets one half of
    # every block, so every step trains the one-process batch: same losses (a step mixing tasks would differ)
    two = _launch(2, tmp_path / "two", tiny_bert_dir, per_device_batch=4)
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-5)
    for task in NAMES:
        assert two[f"eval_{task}_accuracy"] == one[f"eval_{task}_accuracy"]
        rows = (tmp_path / "two" / "tasks" / task / "predictions.jsonl").read_text().splitlines()
        assert len(rows) == 40  # only the main process writes
    blocks = [r["blocks"] for r in _json(tmp_path / "two" / "multitask_results.json")["tasks"]]
    assert blocks == [6, 14, 12]
