"""The search space and the search flags: parsing, the errors that name the setting and the fix, the objective."""

from __future__ import annotations

import importlib.util

import pytest

from tlnlp.config import TrainingArgs
from tlnlp.methods import MethodArgs
from tlnlp.search import HpSearchArgs, HpSearchError, SearchBackendMissingError, load_space, objective_of
from tlnlp.search.backends import base_values, require_backend
from tlnlp.search.space import METHOD_SPACES, build_space


def _space(tmp_path, text, method="full"):
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    return load_space(path, TrainingArgs, MethodArgs(method=method))


def test_a_space_file_maps_training_flags_and_method_options(tmp_path):
    space = _space(tmp_path, "learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n"
                             "num_train_epochs: {type: int, low: 1, high: 4}\n"
                             "lora_r: {type: categorical, choices: [4, 8]}\n", method="lora")
    assert space.names == ["learning_rate", "num_train_epochs", "lora_r"]
    assert [p.target for p in space.params] == ["training", "training", "method"]
    assert space.params[0].log and space.params[0].low == 1e-5
    training, options = space.split({"learning_rate": 1e-4, "num_train_epochs": 2, "lora_r": 8})
    assert training == {"learning_rate": 1e-4, "num_train_epochs": 2} and options == {"lora_r": 8}


def test_a_trial_samples_every_setting_the_same_way_each_time():
    optuna = pytest.importorskip("optuna")
    space = build_space({"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
                         "lora_r": {"type": "categorical", "choices": [4, 8]}}, "test", TrainingArgs,
                        MethodArgs(method="lora"))
    trial = optuna.trial.FixedTrial({"learning_rate": 3e-4, "lora_r": 8})
    assert space.sample(trial) == {"learning_rate": 3e-4, "lora_r": 8}
    assert space.training_space(trial) == {"learning_rate": 3e-4}
    assert space.sample({"learning_rate": 1e-4, "other": 1}) == {"learning_rate": 1e-4}  # a Ray config
    assert space.sample(None) == {}


@pytest.mark.parametrize(("text", "words"), [
    ("learnig_rate: {type: float, low: 0.1, high: 0.2}\n", ["learnig_rate", "did you mean 'learning_rate'"]),
    ("output_dir: {type: categorical, choices: [a, b]}\n", ["output_dir", "fixed"]),
    ("method: {type: categorical, choices: [full, lora]}\n", ["method", "fixed"]),
    ("learning_rate: {type: normal, low: 0.1, high: 0.2}\n", ["type='normal'", "float, int, categorical"]),
    ("learning_rate: {type: float, low: 0.2, high: 0.1}\n", ["low=0.2 is not below high=0.1"]),
    ("learning_rate: {type: float, low: 0.0, high: 0.1, log: true}\n", ["log range needs low > 0"]),
    ("learning_rate: {type: float, high: 0.1}\n", ["needs low and high"]),
    ("num_train_epochs: {type: int, low: 1.5, high: 4}\n", ["low=1.5 is not a whole number"]),
    ("lora_r: {type: categorical}\n", ["choices=None"]),
    ("lora_r: {type: categorical, choices: [4], lo: 1}\n", ["unknown key 'lo'"]),
    ("lr_scheduler_type: {type: float, low: 0.1, high: 0.2}\n", ["no numeric range", "categorical"]),
    ("learning_rate: 0.001\n", ["must be a mapping"]),
    ("- learning_rate\n", ["must map each setting"]),
    ("{}\n", ["the search space is empty"]),
])
def test_a_bad_space_names_the_setting_and_the_fix(tmp_path, text, words):
    with pytest.raises(HpSearchError) as err:
        _space(tmp_path, text)
    message = str(err.value)
    assert "--hp_space" in message and "Fix:" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("method", sorted(METHOD_SPACES))
def test_every_built_in_space_names_real_flags(method):
    space = load_space(None, TrainingArgs, MethodArgs(method=method))
    assert "learning_rate" in space.names and method in space.source


def test_a_method_without_a_built_in_space_asks_for_a_file():
    with pytest.raises(HpSearchError, match="--hp_space"):
        load_space(None, TrainingArgs, MethodArgs(method="setfit"))


def test_trial_zero_gets_the_run_s_own_values_that_lie_in_the_space(tmp_path):
    space = _space(tmp_path, "learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n"
                             "num_train_epochs: {type: int, low: 1, high: 4}\n"
                             "weight_decay: {type: float, low: 0.01, high: 0.1}\n"
                             "lora_r: {type: categorical, choices: [4, 16]}\n", method="lora")
    train_args = TrainingArgs(output_dir="x", learning_rate=1e-4, num_train_epochs=3.0, report_to="none")
    values = base_values(space, train_args, MethodArgs(method="lora", lora_r=8))
    assert values == {"learning_rate": 1e-4, "num_train_epochs": 3}  # weight_decay 0 and lora_r 8 lie outside


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"hp_search": "grid"}, ["hp_search='grid'", "none, optuna, ray"]),
    ({"hp_search": "optuna", "hp_trials": 0}, ["hp_trials=0"]),
    ({"hp_search": "optuna", "hp_space": "no/such.yaml"}, ["file not found"]),
    ({"hp_search": "optuna", "ray_address": "auto"}, ["ray_address='auto'", "--hp_search ray"]),
])
def test_bad_search_flags_name_the_flag(kwargs, words):
    with pytest.raises(ValueError) as err:
        HpSearchArgs(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_the_objective_is_the_validation_metric_named_by_metric_for_best_model():
    assert objective_of(TrainingArgs(output_dir="x", report_to="none"), "accuracy") == ("eval_accuracy", "maximize")
    args = TrainingArgs(output_dir="x", report_to="none", metric_for_best_model="loss")
    assert objective_of(args, "accuracy") == ("eval_loss", "minimize")
    args = TrainingArgs(output_dir="x", report_to="none", metric_for_best_model="eval_f1_macro")
    assert objective_of(args, "accuracy") == ("eval_f1_macro", "maximize")


@pytest.mark.parametrize(("backend", "extra"), [("optuna", "tlnlp[search]"), ("ray", "tlnlp[ray]")])
def test_a_missing_back_end_names_the_extra(monkeypatch, backend, extra):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] in ("optuna", "ray") else real(name, *a))
    with pytest.raises(SearchBackendMissingError) as err:
        require_backend(backend)
    assert f"--hp_search {backend}" in str(err.value) and extra in str(err.value)


def test_the_space_renders_as_a_ray_tune_space():
    pytest.importorskip("ray.tune")
    space = build_space({"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
                         "num_train_epochs": {"type": "int", "low": 1, "high": 3},
                         "lora_r": {"type": "categorical", "choices": [4, 8]}}, "test", TrainingArgs,
                        MethodArgs(method="lora"))
    config = space.ray_config()
    assert set(config) == {"learning_rate", "num_train_epochs", "lora_r"}
    assert 1 <= config["num_train_epochs"].sample() <= 3 and config["lora_r"].sample() in (4, 8)
