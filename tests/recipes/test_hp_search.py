"""--hp_search on the recipes: a 2-trial optuna search end to end, the test split untouched, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from tests.recipes.conftest import ROOT, load_recipe, recipe_args
from tlnlp.config import ConfigError, parse_args
from tlnlp.training import TlnlpTrainer

pytest.importorskip("optuna")

SPACE = ("learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n"
         "num_train_epochs: {type: int, low: 1, high: 2}\n")


def _flags(tiny_bert_dir, out, space, trials, *extra):
    return recipe_args(tiny_bert_dir, out, "--hp_search", "optuna", "--hp_trials", str(trials), "--hp_space",
                       str(space), *extra)


def _study_rows(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
        return con.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


def _values(db):
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT t.number, v.value FROM trials t JOIN trial_values v "
                                "ON t.trial_id = v.trial_id").fetchall())


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE, encoding="utf-8")
    return path


def test_a_two_trial_search_writes_its_outputs_and_trains_the_best_values(tmp_path, tiny_bert_dir, space, monkeypatch):
    scored = []  # (searching?, prefix, rows) of every evaluation and prediction
    evaluate, predict = TlnlpTrainer.evaluate, TlnlpTrainer.predict

    def spy_evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        rows = len(eval_dataset if eval_dataset is not None else self.eval_dataset)
        scored.append((self.hp_search_backend is not None, metric_key_prefix, rows))
        return evaluate(self, eval_dataset, ignore_keys, metric_key_prefix)

    def spy_predict(self, test_dataset, *args, **kwargs):
        scored.append((self.hp_search_backend is not None, kwargs.get("metric_key_prefix", "test"), len(test_dataset)))
        return predict(self, test_dataset, *args, **kwargs)

    monkeypatch.setattr(TlnlpTrainer, "evaluate", spy_evaluate)
    monkeypatch.setattr(TlnlpTrainer, "predict", spy_predict)
    recipe = load_recipe("classification")
    out = tmp_path / "run"
    metrics = recipe.main(*parse_args(*recipe.ARGUMENTS, args=_flags(tiny_bert_dir, out, space, 2)))

    search = out / "hp_search"
    assert [state for _, state in _study_rows(search / "study.db")] == ["COMPLETE", "COMPLETE"]
    during = [s for s in scored if s[0]]
    assert during and all(prefix == "eval" and rows == 32 for _, prefix, rows in during)  # validation only
    assert not [s for s in scored if not s[0] and s[1] == "eval" and s[2] != 32]
    lines = (search / "trials.csv").read_text().splitlines()
    assert lines[0] == "trial,state,eval_accuracy,learning_rate,num_train_epochs,seconds" and len(lines) == 3
    assert (search / "trials.md").read_text().startswith("| trial | state | eval_accuracy |")
    assert (search / "search.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in search.glob("trial-*")) == ["trial-0", "trial-1"]
    trial0 = json.loads((search / "trial-0" / "trial.json").read_text())
    assert trial0["values"] == {"learning_rate": 1e-3, "num_train_epochs": 2}  # trial 0: the run's own values

    values = _values(search / "study.db")
    best = max(values, key=lambda n: (values[n], -n))
    assert metrics["hp_search_trials"] == 2 and metrics["hp_search_best_trial"] == best
    assert metrics["eval_accuracy"] == pytest.approx(values[best])  # the final model reproduces the best trial
    best_config = search / "best_config.yaml"
    parsed = parse_args(*recipe.ARGUMENTS, args=["--config", str(best_config)])
    chosen = json.loads((search / f"trial-{best}" / "trial.json").read_text())["values"]
    assert parsed[3].learning_rate == pytest.approx(chosen["learning_rate"])
    assert parsed[3].num_train_epochs == chosen["num_train_epochs"] and parsed[4].hp_search == "none"
    assert parsed[3].output_dir == f"{out}-best"
    run_config = yaml.safe_load((out / "run_config.yaml").read_text())
    assert run_config["learning_rate"] == pytest.approx(chosen["learning_rate"])
    assert "Hyperparameter search" in (out / "README.md").read_text()


def test_a_killed_search_continues_where_it_stopped(tmp_path, tiny_bert_dir, space):
    out = tmp_path / "run"
    flags = _flags(tiny_bert_dir, out, space, 3, "--num_train_epochs", "2")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "TLNLP_BF16_AUTO": "fp32",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "recipes" / "classification.py"), *flags], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = out / "hp_search" / "study.db"
    deadline, rows = time.monotonic() + 300, []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                rows = _study_rows(db) if db.exists() else []
            except sqlite3.Error:
                rows = []
            if any(state == "COMPLETE" for _, state in rows):
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert any(state == "COMPLETE" for _, state in rows), err[-3000:]
    before = _values(db)
    states_at_kill = dict(_study_rows(db))
    assert not (out / "model.safetensors").exists()  # killed during the search

    recipe = load_recipe("classification")
    metrics = recipe.main(*parse_args(*recipe.ARGUMENTS, args=flags))  # the same command again

    after = dict(_study_rows(db))
    assert sum(state == "COMPLETE" for state in after.values()) == 3  # completed trials counted towards --hp_trials
    assert all(_values(db)[n] == value for n, value in before.items())  # the first run's trials are kept
    assert all(after[n] == "FAIL" for n, state in states_at_kill.items() if state == "RUNNING")
    assert metrics["hp_search_trials"] == len(after) and "eval_accuracy" in metrics
    assert len((out / "hp_search" / "trials.csv").read_text().splitlines()) == len(after) + 1


def test_recipes_without_a_search_refuse_the_flag():
    recipe = load_recipe("zero_shot")  # trains nothing (the training recipes: tests/recipes/test_hp_search_recipes.py)
    with pytest.raises(ConfigError, match="--hp_search"):
        parse_args(*recipe.ARGUMENTS, args=["--output_dir", "x", "--hp_search", "optuna"])


def test_a_search_refuses_a_method_without_the_trainer_before_any_work(tmp_path, tiny_bert_dir, space):
    from tlnlp.search import HpSearchError

    recipe = load_recipe("classification")
    out = tmp_path / "run"
    with pytest.raises(HpSearchError, match="trains without the Trainer"):
        recipe.main(*parse_args(*recipe.ARGUMENTS, args=_flags(tiny_bert_dir, out, space, 2, "--method",
                                                                  "feature_extraction")))
    assert not (out / "hp_search").exists()


def test_question_answering_searches_a_method_option_on_validation_f1(tmp_path, tiny_bert_dir, monkeypatch):
    from tests.recipes.test_question_answering import qa_args
    from tlnlp.search import trainer as search_trainer

    applied = []
    real = search_trainer.apply_method

    def spy(model, method_args):
        applied.append(method_args.lora_r)
        return real(model, method_args)

    monkeypatch.setattr(search_trainer, "apply_method", spy)
    space = tmp_path / "space.yaml"
    space.write_text("lora_r: {type: categorical, choices: [2, 4]}\n"
                     "learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n", encoding="utf-8")
    recipe = load_recipe("question_answering")
    out = tmp_path / "qa"
    flags = qa_args(tiny_bert_dir, out, "--method", "lora", "--lora_r", "4", "--hp_search", "optuna",
                    "--hp_trials", "2", "--hp_space", str(space), "--num_train_epochs", "1")
    metrics = recipe.main(*parse_args(*recipe.ARGUMENTS, args=flags, defaults=recipe.DEFAULTS))

    lines = (out / "hp_search" / "trials.csv").read_text().splitlines()
    assert lines[0].startswith("trial,state,eval_f1,lora_r,learning_rate") and len(lines) == 3
    trials = [json.loads((out / "hp_search" / f"trial-{n}" / "trial.json").read_text())["values"] for n in (0, 1)]
    assert trials[0]["lora_r"] == 4  # trial 0: the run's own --lora_r
    assert applied[1:] == [t["lora_r"] for t in trials]  # each trial applied the method with its own lora_r
    assert (out / "hp_search" / "trial-0" / "predictions.json").exists()  # the trials scored validation answers
    best = trials[metrics["hp_search_best_trial"]]
    assert json.loads((out / "adapter_config.json").read_text())["r"] == best["lora_r"]
    assert "eval_f1" in metrics and "test_f1" in metrics


def test_a_ray_tune_search_runs_on_this_machine(tmp_path, tiny_bert_dir, space):
    pytest.importorskip("ray.tune")
    recipe = load_recipe("classification")
    out = tmp_path / "run"
    flags = recipe_args(tiny_bert_dir, out, "--hp_search", "ray", "--hp_trials", "2", "--hp_space", str(space))
    metrics = recipe.main(*parse_args(*recipe.ARGUMENTS, args=flags))
    lines = (out / "hp_search" / "trials.csv").read_text().splitlines()
    assert len(lines) == 3 and all(",COMPLETE," in line for line in lines[1:])
    assert metrics["hp_search_trials"] == 2 and "eval_accuracy" in metrics
    assert (out / "hp_search" / "best_config.yaml").exists()
