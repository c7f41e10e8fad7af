from pathlib import Path

import pytest

from tests.recipes.conftest import ROOT, load_recipe
from tlnlp.compare import CompareArgs
from tlnlp.config import DataArgs, ModelArgs, parse_args

CONFIGS = sorted((ROOT / "recipes" / "configs" / "compare").glob("*.yaml"))


def test_there_are_compare_configs():
    assert {p.name for p in CONFIGS} >= {"movie_minilm_quick.yaml", "trec6_minilm.yaml"}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first.startswith("# accelerate launch") and "recipes/compare.py" in first
    assert f"--config recipes/configs/compare/{config.name}" in first
    model_args, data_args, compare_args = parse_args(ModelArgs, DataArgs, CompareArgs, args=["--config", str(config)])
    assert compare_args.strategies and compare_args.budgets and compare_args.seeds
    assert data_args.dataset_name.startswith("bundled:")


def _flags(model_dir: Path, data_dir: Path, out: Path) -> list[str]:
    return ["--model_name_or_path", str(model_dir), "--train_file", str(data_dir / "train.csv"),
            "--test_file", str(data_dir / "test.csv"), "--max_seq_length", "16", "--output_dir", str(out),
            "--strategies", "frozen_backbone", "from_scratch", "--budgets", "3", "--seeds", "0",
            "--min_train_steps", "2", "--max_train_epochs", "2", "--batch_size", "4", "--check_forgetting", "false"]


@pytest.fixture
def toy_csv(tmp_path):
    rows = [(f"the film was {'great' if i % 2 else 'awful'} {i}", "pos" if i % 2 else "neg") for i in range(30)]
    for name, part in (("train", rows[:20]), ("test", rows[20:])):
        (tmp_path / f"{name}.csv").write_text("text,label\n" + "\n".join(f"{t},{lab}" for t, lab in part) + "\n")
    return tmp_path


def test_recipe_and_cli_run_the_ladder_and_share_the_cache(tiny_bert_dir, toy_csv, tmp_path, capsys):
    recipe = load_recipe("compare")
    out = tmp_path / "ladder"
    metrics = recipe.main(*parse_args(ModelArgs, DataArgs, CompareArgs, args=_flags(tiny_bert_dir, toy_csv, out)))
    assert set(metrics) == {f"{s}/3/{m}_{stat}" for s in ("frozen_backbone", "from_scratch")
                            for m in ("accuracy", "f1_macro") for stat in ("mean", "std")}
    assert "| frozen_backbone | 3 |" in capsys.readouterr().out

    from tlnlp.__main__ import main as cli

    assert cli(["compare", *_flags(tiny_bert_dir, toy_csv, out)]) == 0
    printed = capsys.readouterr().out
    assert "0 cells run, 2 from the cache" in printed and "| from_scratch | 3 |" in printed


def test_cli_reports_a_bad_flag_value(tmp_path, capsys):
    from tlnlp.__main__ import main as cli

    with pytest.raises(SystemExit) as exc:
        cli(["compare", "--dataset_name", "bundled:trec6", "--output_dir", str(tmp_path), "--budgets", "eight"])
    assert exc.value.code == 2
    assert "budgets: 'eight' is not a label budget" in capsys.readouterr().err
