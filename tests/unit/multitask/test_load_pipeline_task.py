"""``tlnlp.load_pipeline(run, task=...)``: the task's folder of a multi-task run, and clear errors."""

from __future__ import annotations

import json

import pytest

import tlnlp
from tlnlp.inference import MULTITASK_MANIFEST, RunTaskError, run_task_folder


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "mt_run"
    folder.mkdir()
    (folder / MULTITASK_MANIFEST).write_text(json.dumps({"tasks": {"movie": "tasks/movie", "trec6": "tasks/trec6"}}))
    return folder


def test_a_task_name_picks_its_folder(run, tmp_path):
    assert run_task_folder(run, "trec6") == run / "tasks" / "trec6"
    single = tmp_path / "single"
    single.mkdir()
    assert run_task_folder(single, None) == single  # a single-task run: unchanged
    assert run_task_folder("org/model", None) == "org/model"  # a Hub id: unchanged


@pytest.mark.parametrize("task, words", [
    ("trec", ["task='trec' is not a task of the multi-task run", "its tasks are: movie, trec6"]),
    (None, ["holds a multi-task run: pick its task with task=<name>", "movie, trec6"]),
])
def test_unknown_or_missing_task_names_list_the_run_tasks(run, task, words):
    with pytest.raises(RunTaskError) as err:
        tlnlp.load_pipeline(run, task=task)
    for word in words:
        assert word in str(err.value)


def test_a_task_for_a_single_task_run_is_refused(tmp_path):
    with pytest.raises(RunTaskError, match="holds no multi-task run.*drop task="):
        tlnlp.load_pipeline(tmp_path, task="movie")
