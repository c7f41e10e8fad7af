"""The one configuration mechanism: YAML defaults, flags win, unknown keys/flags fail with a suggestion."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from tlnlp.config import ConfigError, DataArgs, ModelArgs, TrainingArgs, parse_args, write_run_config
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)


def _yaml(tmp_path, **values):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_yaml_gives_defaults_and_flags_override(tmp_path):
    cfg = _yaml(tmp_path, dataset_name="bundled:movie_sentiment", output_dir=str(tmp_path / "o"),
                learning_rate=3e-5, num_train_epochs=2, max_seq_length=64)
    model, data, method, train = parse_args(*TYPES, args=["--config", cfg, "--learning_rate", "1e-4"])
    assert train.learning_rate == pytest.approx(1e-4)  # flag wins
    assert train.num_train_epochs == 2  # from the file
    assert data.max_seq_length == 64
    assert model.model_name_or_path == "bundled:minilm"  # dataclass default
    assert method.method == "full"


def test_tlnlp_training_defaults_are_applied_and_overridable(tmp_path):
    cfg = _yaml(tmp_path, dataset_name="x", output_dir="o")
    *_, train = parse_args(*TYPES, args=["--config", cfg])
    assert train.train_sampling_strategy == "group_by_length"
    assert train.average_tokens_across_devices is False
    *_, train = parse_args(*TYPES, args=["--config", cfg, "--train_sampling_strategy", "random"])
    assert train.train_sampling_strategy == "random"


def test_every_training_arguments_flag_works(tmp_path):
    *_, train = parse_args(*TYPES, args=["--dataset_name", "x", "--output_dir", "o", "--gradient_accumulation_steps",
                                         "4", "--lr_scheduler_type", "cosine", "--max_steps", "7", "--use_cpu"])
    assert (train.gradient_accumulation_steps, train.max_steps, train.use_cpu) == (4, 7, True)
    assert str(train.lr_scheduler_type.value if hasattr(train.lr_scheduler_type, "value") else
               train.lr_scheduler_type) == "cosine"


@pytest.mark.parametrize("argv, wanted", [
    (["--learning_rat", "1"], "learning_rate"),
    (["--lerning_rate=3"], "learning_rate"),
    (["--max_seq_len", "3"], "max_seq_length"),
])
def test_unknown_flag_fails_with_closest_name(tmp_path, argv, wanted, capsys):
    with pytest.raises(ConfigError) as err:
        parse_args(*TYPES, args=["--dataset_name", "x", "--output_dir", "o", *argv])
    assert err.value.code == 2
    assert wanted in str(err.value)
    assert wanted in capsys.readouterr().err  # printed for the user, not only raised


def test_abbreviated_flags_are_not_accepted(tmp_path):
    with pytest.raises(ConfigError):
        parse_args(*TYPES, args=["--dataset_name", "x", "--output_dir", "o", "--learning", "1"])


def test_unknown_yaml_key_fails_with_closest_name(tmp_path):
    cfg = _yaml(tmp_path, dataset_name="x", output_dir="o", lerning_rate=1.0)
    with pytest.raises(ConfigError, match="lerning_rate.*learning_rate"):
        parse_args(*TYPES, args=["--config", cfg])


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_args(*TYPES, args=["--config", str(bad)])
    with pytest.raises(ConfigError, match="not found"):
        parse_args(*TYPES, args=["--config", str(tmp_path / "none.yaml")])


def test_invalid_value_names_field(tmp_path):
    with pytest.raises(ConfigError, match="max_seq_length"):
        parse_args(*TYPES, args=["--dataset_name", "x", "--output_dir", "o", "--max_seq_length", "0"])
    with pytest.raises(ConfigError, match="dataset_name"):
        parse_args(*TYPES, args=["--output_dir", "o"])


@pytest.mark.parametrize(("flag", "value", "fix"), [
    ("max_train_samples", "-5", "Fix: give --max_train_samples a value above 0, or leave it out for the default"),
    ("train_samples_per_class", "0", "Fix: give --train_samples_per_class a value above 0"),
    ("validation_split_percentage", "60", "Fix: give --validation_split_percentage a value from 0 up to 49"),
    ("multi_label_threshold", "1.5", "Fix: give --multi_label_threshold a probability strictly between 0 and 1"),
])
def test_bad_data_sizes_name_the_flag_the_value_and_the_fix(flag, value, fix):
    with pytest.raises(ConfigError) as raised:
        parse_args(*TYPES, args=["--dataset_name", "x", "--output_dir", "o", f"--{flag}", value])
    message = str(raised.value)
    assert f"{flag}=" in message and value in message and fix in message


def test_run_config_round_trips_and_never_holds_a_token(tmp_path):
    cfg = _yaml(tmp_path, dataset_name="bundled:trec6", output_dir=str(tmp_path / "o"), learning_rate=2e-5)
    parsed = parse_args(*TYPES, args=["--config", cfg, "--token", "hf_SECRET123", "--hub_token", "hf_SECRET456",
                                      "--num_train_epochs", "3"])
    path = write_run_config(tmp_path / "o", *parsed)
    text = path.read_text()
    assert "SECRET" not in text
    written = yaml.safe_load(text)
    assert written["learning_rate"] == pytest.approx(2e-5)
    assert written["num_train_epochs"] == 3
    assert written["dataset_name"] == "bundled:trec6"
    again = parse_args(*TYPES, args=["--config", str(path)])
    assert again[0] == dataclasses.replace(parsed[0], token=None)  # the token is never written, so not read back
    assert again[1:3] == parsed[1:3]
    assert again[3].num_train_epochs == 3 and again[3].learning_rate == pytest.approx(2e-5)


def test_several_processes_without_cuda_turn_on_use_cpu(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    from tlnlp.config.parser import _environment_defaults

    assert _environment_defaults()["use_cpu"] is True
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert "use_cpu" not in _environment_defaults()


@pytest.mark.parametrize("given", [["tensorboard", "mlflow"], ["tensorboard,mlflow"]])
def test_report_to_takes_several_trackers_on_the_command_line(given):
    (train,) = parse_args(TrainingArgs, args=["--output_dir", "o", "--report_to", *given])
    assert train.report_to == ["tensorboard", "mlflow"]
    (train,) = parse_args(TrainingArgs, args=["--output_dir", "o", "--report_to", "none"])
    assert train.report_to == []


def test_help_renders_flags_whose_help_holds_a_percent_sign(capsys):
    from tlnlp.compare import CompareArgs

    # CompareArgs' transfer_source_early_stopping_patience says "10% of its training rows": argparse formats help
    with pytest.raises(SystemExit) as done:
        parse_args(ModelArgs, DataArgs, CompareArgs, args=["--help"])
    assert done.value.code == 0
    assert "(10% of its training rows" in " ".join(capsys.readouterr().out.split())
