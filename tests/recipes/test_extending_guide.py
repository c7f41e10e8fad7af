"""docs/extending.md runs as written: its method and task plugins install, register and work in the recipes.

The guide's files are written out as they stand in the markdown, installed with pip (into a folder put on
PYTHONPATH, so the test environment itself is untouched), and its commands run with a tiny model and small data
appended as overriding flags.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.recipes.conftest import ROOT

pytestmark = pytest.mark.slow

GUIDE = ROOT / "docs" / "extending.md"
_BLOCK = re.compile(r"<!-- (file|commands): (\S+) -->\n```\w*\n(.*?)```", re.S)


def _blocks(kind: str) -> dict[str, str]:
    return {name: body for found, name, body in _BLOCK.findall(GUIDE.read_text(encoding="utf-8")) if found == kind}


def _commands(name: str) -> list[list[str]]:
    text = _blocks("commands")[name].replace("\\\n", " ")
    return [shlex.split(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    """The guide's files written out, its packages pip-installed into a folder, and an environment that sees it."""
    work = tmp_path_factory.mktemp("guide")
    for name, body in _blocks("file").items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(body, encoding="utf-8")
    site = work / "site"
    for command in _commands("method")[:1] + _commands("task")[:1]:
        assert command[:2] == ["pip", "install"], command
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(site), str(work / command[2])], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    return work, env


def _run(command: list[str], env: dict[str, str], cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    assert command[:2] == ["accelerate", "launch"], command
    args = command[2:]
    if args[0] == "--config_file":  # accelerate's own flags come before the script
        args = args[2:]
    proc = subprocess.run([sys.executable, *args, *extra], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def test_the_method_plugin_trains_in_the_classification_recipe(guide, tiny_bert_dir, tmp_path):
    work, env = guide
    help_text = subprocess.run([sys.executable, "recipes/classification.py", "--help"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=300).stdout
    assert "--embeddings_norm_trains" in help_text and "freeze_embeddings" in help_text
    out = tmp_path / "frozen"
    _run(_commands("method")[1], env, ROOT, "--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(out),
         "--max_train_samples", "32", "--max_eval_samples", "16", "--max_predict_samples", "16",
         "--max_seq_length", "32", "--max_steps", "4", "--report_to", "none", "--save_strategy", "no",
         "--eval_strategy", "no", "--learning_rate", "1e-2")
    before, after = load_file(tiny_bert_dir / "model.safetensors"), load_file(out / "model.safetensors")
    embedding = next(name for name in before if name.endswith("word_embeddings.weight"))
    assert torch.equal(before[embedding], after[embedding])  # frozen: bit-identical
    layer = next(name for name in before if name.endswith("encoder.layer.0.attention.self.query.weight"))
    assert not torch.equal(before[layer], after[layer])  # the rest trained
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "except the embeddings" in card and "the new classification head trains too" in card
    assert json.loads((out / "all_results.json").read_text())["train_trainable_parameters"] > 0


def test_the_method_plugin_is_a_ladder_strategy(guide, tiny_bert_dir, tmp_path):
    work, env = guide
    out = tmp_path / "ladder"
    _run(_commands("method")[2], env, ROOT, "--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(out),
         "--budgets", "4", "--max_predict_samples", "24", "--max_seq_length", "32", "--min_train_steps", "2",
         "--check_forgetting", "false")
    rows = {row["strategy"]: row for row in json.loads((out / "compare_table.json").read_text())["rows"]}
    assert set(rows) == {"freeze_embeddings", "full"}
    frozen = 30522 * 32 + 128 * 32 + 2 * 32 + 2 * 32  # word, position and type tables, and the embeddings' norm
    assert rows["full"]["trainable_parameters"] - rows["freeze_embeddings"]["trainable_parameters"] == frozen


def _ratings(folder: Path) -> None:
    words = ["dreadful", "poor", "fine", "good", "superb"]
    for split, count in (("train", 40), ("validation", 12), ("test", 12)):
        rows = [f"a {words[i % 5]} film {i},{(i % 5) / 4:.2f}" for i in range(count)]
        (folder / f"{split}.csv").write_text("text,rating\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_the_task_plugin_trains_through_its_script_and_finish(guide, tiny_bert_dir, tmp_path):
    work, env = guide
    _ratings(work)
    out = tmp_path / "ratings"
    _run(_commands("task")[1], env, work, "--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(out),
         "--max_steps", "6", "--report_to", "none", "--save_strategy", "no", "--learning_rate", "1e-3",
         "--max_seq_length", "16")
    results = json.loads((out / "all_results.json").read_text())
    assert {"eval_mse", "test_mse", "test_pearson", "train_loss"} <= set(results)
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 12 and isinstance(predictions[0]["prediction"], float)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "accelerate launch train_regression.py --config run_config.yaml" in card
    assert "## Predicting" in card
    for name in ("run_config.yaml", "environment.json", "training_curves.png", "model.safetensors"):
        assert (out / name).is_file(), name
    code = ("from tlnlp.config import DataArgs; from tlnlp.tasks import load_task_data; "
            f"d = load_task_data(DataArgs(train_file={str(work / 'train.csv')!r}, label_column='rating'), "
            "task='text-regression'); print(d.splits['train'][0]['label'])")
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and shown.stdout.strip() == "0.0", shown.stderr[-2000:]
