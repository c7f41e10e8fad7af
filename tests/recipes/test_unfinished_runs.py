"""No half results, end to end: a crashed or killed run reads as unfinished until resumed; one run holds a folder."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.recipes.conftest import ROOT, load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.config.run_folder import LOCK_FILE, MARKER, UnfinishedRunError
from tlnlp.inference import load_pipeline
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)
_STEPS = ("--eval_strategy", "no", "--save_strategy", "steps", "--save_steps", "4", "--save_total_limit", "100")


def _run(out: Path, model_dir: Path, *extra: str) -> dict:
    return load_recipe("classification").main(*parse_args(*TYPES, args=recipe_args(model_dir, out, *extra)))


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def _finished(out: Path) -> None:
    assert not (out / MARKER).exists() and not (out / LOCK_FILE).exists()
    assert (out / "README.md").is_file() and (out / "all_results.json").is_file()
    assert load_pipeline(out)(["a fine film"])[0]["label"] in ("negative", "positive")


def test_a_run_that_fails_while_writing_its_outputs_reads_as_unfinished_until_resumed(tmp_path, tiny_bert_dir,
                                                                                      monkeypatch):
    finish_module = importlib.import_module("tlnlp.runs.finish")  # the module (tlnlp.runs.finish is the function)
    out = tmp_path / "crashed"

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(finish_module, "_write_card", full_disk)
    with pytest.raises(OSError, match="No space left"):
        _run(out, tiny_bert_dir, "--num_train_epochs", "1")
    assert (out / "model.safetensors").is_file() and not (out / "README.md").exists()
    assert json.loads((out / MARKER).read_text())["pid"] == os.getpid()
    with pytest.raises(UnfinishedRunError, match="unfinished run"):
        load_pipeline(out)
    monkeypatch.undo()
    _run(out, tiny_bert_dir, "--num_train_epochs", "1", "--resume_from_checkpoint", "last")
    _finished(out)


def test_a_killed_run_holds_its_folder_while_alive_and_reads_as_unfinished_until_resumed(tmp_path, tiny_bert_dir):
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    script = str(ROOT / "recipes" / "classification.py")
    first = subprocess.Popen([sys.executable, script, *recipe_args(tiny_bert_dir, out, "--max_steps", "100000",
                                                                   *_STEPS)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoint-4" / "trainer_state.json").is_file():
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not reach checkpoint-4"
            time.sleep(0.1)
        os.kill(first.pid, signal.SIGSTOP)  # frozen mid-training: alive, holding the folder, writing nothing
        stat = Path(f"/proc/{first.pid}/stat")
        while stat.is_file() and stat.read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
            time.sleep(0.05)
        time.sleep(1.0)  # a write already in the kernel when the stop came completes before the snapshot
        before = _files(out)
        second = subprocess.run([sys.executable, script, *recipe_args(tiny_bert_dir, out, "--overwrite_output_dir")],
                                capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        assert second.returncode == 2, second.stderr[-3000:]
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith("error: output_dir=") and "is in use" in last and f"pid {first.pid}" in last
        assert _files(out) == before  # nothing of the first run was touched
        with pytest.raises(UnfinishedRunError, match=f"pid {first.pid}"):
            load_pipeline(out)
    finally:
        first.kill()
        first.wait()
    assert json.loads((out / MARKER).read_text())["pid"] == first.pid  # killed: the folder stays unfinished
    with pytest.raises(UnfinishedRunError):
        load_pipeline(out)
    metrics = _run(out, tiny_bert_dir, "--max_steps", "6", *_STEPS,
                   "--resume_from_checkpoint", str(out / "checkpoint-4"))
    assert "test_accuracy" in metrics
    _finished(out)
