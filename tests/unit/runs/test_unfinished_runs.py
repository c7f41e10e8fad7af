"""No half results: an unfinished run folder carries a marker that readers refuse; one run at a time holds a folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlnlp.config import TrainingArgs
from tlnlp.config.run_folder import (
    LOCK_FILE,
    MARKER,
    UnfinishedRunError,
    claim_output_dir,
    close_output_dir,
    ensure_claimed,
    write_text_atomic,
)
from tlnlp.hub import push_run
from tlnlp.hub.push import _files_to_push
from tlnlp.inference import load_pipeline
from tlnlp.training import OutputDirError, prepare_output_dir

ROOT = Path(__file__).resolve().parents[3]

_HOLDER = """
import sys, time
from tlnlp.config import TrainingArgs
from tlnlp.training import prepare_output_dir
prepare_output_dir(TrainingArgs(output_dir=sys.argv[1], report_to="none", overwrite_output_dir=True))
(open(sys.argv[1] + "/mine.txt", "w")).write("the first run's file")
print("holding", flush=True)
time.sleep(600)
"""


def _args(out: Path, **kw) -> TrainingArgs:
    return TrainingArgs(output_dir=str(out), report_to="none", **kw)


def _unfinished(folder: Path, pid: int = 4242) -> Path:
    """A folder as a killed run leaves it: a model's config, a checkpoint, and the marker."""
    (folder / "checkpoint-2").mkdir(parents=True)
    (folder / "checkpoint-2" / "trainer_state.json").write_text("{}")  # a complete checkpoint
    (folder / "config.json").write_text("{}")
    (folder / MARKER).write_text(json.dumps({"pid": pid, "host": "box", "started": "2025-01-01T00:00:00+0000"}))
    return folder


@pytest.fixture
def holder(tmp_path):
    """Another process that holds ``tmp_path / 'busy'`` as a running run does (lock, marker, one file)."""
    out = tmp_path / "busy"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "holding"
        yield out, proc
    finally:
        proc.kill()
        proc.wait()


def test_load_pipeline_and_push_refuse_an_unfinished_folder_saying_so(tmp_path):
    folder = _unfinished(tmp_path / "run")
    with pytest.raises(UnfinishedRunError) as err:
        load_pipeline(folder)
    message = str(err.value)
    assert f"{folder} is an unfinished run" in message and MARKER in message and "pid 4242 on box" in message
    assert "--resume_from_checkpoint last" in message and "\n" not in message
    with pytest.raises(UnfinishedRunError, match="unfinished run.*pushing it"):
        push_run(folder, "someone/run", token="hf_unused")  # refused before any token or network is needed
    with pytest.raises(UnfinishedRunError, match="unfinished run"):
        load_pipeline(folder, task="a")  # a multi-task run's task folder lies inside the unfinished run


def test_prepare_output_dir_refuses_an_unfinished_folder_unless_resumed_or_overwritten(tmp_path):
    folder = _unfinished(tmp_path / "run")
    with pytest.raises(OutputDirError, match="holds an unfinished run.*--resume_from_checkpoint last.*"
                                             "--overwrite_output_dir"):
        prepare_output_dir(_args(folder))
    assert prepare_output_dir(_args(folder, resume_from_checkpoint="last")).endswith("checkpoint-2")
    marker = json.loads((folder / MARKER).read_text())
    assert marker["pid"] == os.getpid() and marker["trains"] is True  # the resumed run holds the folder now
    assert (folder / LOCK_FILE).is_file()
    close_output_dir(folder)
    assert not (folder / MARKER).exists() and not (folder / LOCK_FILE).exists()
    with pytest.raises(Exception) as err:  # finished: the marker no longer stops it (the stub config is no model)
        load_pipeline(folder)
    assert not isinstance(err.value, UnfinishedRunError)


def test_a_refused_run_leaves_no_folder_and_the_first_write_takes_the_hold(tmp_path):
    out = tmp_path / "new"
    assert prepare_output_dir(_args(out)) is None
    assert not out.exists()  # nothing is written before the run's first file
    ensure_claimed(out / "checkpoint-1")  # e.g. the Trainer, about to save into the folder
    assert (out / MARKER).is_file() and (out / LOCK_FILE).is_file()
    close_output_dir(out)
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_folder_filled_meanwhile_is_refused_at_the_first_write(tmp_path):
    out = tmp_path / "raced"
    prepare_output_dir(_args(out))
    out.mkdir()
    (out / "all_results.json").write_text("{}")  # another run wrote here after this one's checks
    with pytest.raises(OutputDirError, match="another run has written into it since"):
        ensure_claimed(out)
    assert not (out / MARKER).exists() and (out / "all_results.json").read_text() == "{}"


def test_a_second_run_on_a_held_folder_is_refused_whatever_its_flags(holder):
    out, proc = holder
    for flags in ({}, {"overwrite_output_dir": True}, {"resume_from_checkpoint": "last"}):
        with pytest.raises(OutputDirError) as err:
            prepare_output_dir(_args(out, **flags))
        assert f"output_dir={str(out)!r} is in use: another run is writing there (pid {proc.pid}" in str(err.value)
    with pytest.raises(UnfinishedRunError, match=f"still going: pid {proc.pid}"):
        load_pipeline(out)
    assert (out / "mine.txt").read_text() == "the first run's file"
    assert json.loads((out / MARKER).read_text())["pid"] == proc.pid


def test_a_second_run_is_refused_from_the_command_line_with_exit_2(holder, tmp_path):
    out, proc = holder
    cmd = [sys.executable, str(ROOT / "recipes" / "zero_shot.py"), "--model_name_or_path", str(tmp_path / "none"),
           "--dataset_name", "bundled:movie_sentiment", "--output_dir", str(out), "--overwrite_output_dir"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2, run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: output_dir=") and f"pid {proc.pid}" in last and "Traceback" not in run.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_FILE, MARKER, "mine.txt"])
    assert (out / "mine.txt").read_text() == "the first run's file"


def test_only_the_main_process_holds_the_folder(holder, monkeypatch):
    out, _ = holder
    monkeypatch.setenv("RANK", "1")  # another process of the first run's own launch: not refused, holds nothing
    assert prepare_output_dir(_args(out, overwrite_output_dir=True)) is None


def test_a_killed_holder_leaves_the_marker_and_frees_the_lock(holder):
    out, proc = holder
    proc.kill()
    proc.wait()
    with pytest.raises(UnfinishedRunError):
        load_pipeline(out)
    with pytest.raises(OutputDirError, match="unfinished"):
        prepare_output_dir(_args(out))
    prepare_output_dir(_args(out, overwrite_output_dir=True))  # no live run holds it: starting over is allowed
    assert json.loads((out / MARKER).read_text())["pid"] == os.getpid()
    close_output_dir(out)
    assert not (out / MARKER).exists() and not (out / LOCK_FILE).exists()


def test_an_evaluation_only_run_may_read_the_model_in_its_own_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    claim_output_dir(folder, trains=False)
    assert (folder / MARKER).is_file()
    with pytest.raises(Exception) as err:  # the marker is this evaluation's own: loading goes on (stub config)
        load_pipeline(folder)
    assert not isinstance(err.value, UnfinishedRunError)
    claim_output_dir(folder, trains=True)
    with pytest.raises(UnfinishedRunError):
        load_pipeline(folder)  # this process's own training run stopped midway: its model is half-written
    close_output_dir(folder)


def test_marker_and_lock_are_never_pushed(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", MARKER, LOCK_FILE, "README.md.tmp"):
        (folder / name).write_text("x")
    assert _files_to_push(folder) == ["config.json", "model.safetensors"]


def test_write_text_atomic_replaces_whole_and_leaves_no_partial_file(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("old")
    write_text_atomic(path, "new\r\ncard\n")
    assert path.read_bytes() == b"new\r\ncard\n" and [p.name for p in tmp_path.iterdir()] == ["README.md"]
