"""The reproduce command follows how a run was started: a recipe file, ``tlnlp train``, or ``tlnlp.train``."""

from __future__ import annotations

from tlnlp.config import current_launch, rerun_command
from tlnlp.config.launch import launched
from tlnlp.runs import reproduce_command


def test_a_script_run_reruns_with_accelerate_launch_of_its_file(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert current_launch().kind == "script"
    assert rerun_command("classification") == "accelerate launch recipes/classification.py --config run_config.yaml"
    assert rerun_command("my_project/train.py").startswith("accelerate launch my_project/train.py ")


def test_a_cli_run_reruns_with_the_installed_command(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    with launched("cli", "classification", ["--config", "movie_minilm", "--token", "hf_SECRET", "--seed", "3"]):
        assert rerun_command("classification") == "tlnlp train classification --config run_config.yaml"
        command = reproduce_command()
    assert command == "tlnlp train classification --config movie_minilm --token '***' --seed 3"
    assert "hf_SECRET" not in command
    assert current_launch().kind == "script", "the launch record is restored after the block"


def test_under_accelerate_the_command_keeps_accelerate(monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    with launched("python", "ulmfit", ["--output_dir", "runs/u"]):
        assert reproduce_command() == "accelerate launch -m tlnlp train ulmfit --output_dir runs/u"
        assert rerun_command("ulmfit") == "accelerate launch -m tlnlp train ulmfit --config run_config.yaml"
