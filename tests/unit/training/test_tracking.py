"""Trackers through ``--report_to``: trackio (and mlflow when installed) store what a real run logged, offline; a
missing tracker or GGUF package stops the run with one line that names the extra to install."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from transformers import TrainingArguments

from tests.recipes.conftest import ROOT, load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.errors import UserError, user_errors
from tlnlp.methods import MethodArgs
from tlnlp.training.tracking import TrackerMissingError, check_trackers, prepare_tracking

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)

# Loaded by every Python process started with this folder on PYTHONPATH: any connection or name lookup beyond
# this machine is refused and written down, so a test can assert that a run never reached the network.
_NO_NETWORK = '''
import os, socket

_LOG = os.environ["TLNLP_TEST_NETWORK_LOG"]
_LOCAL = ("127.", "::1", "localhost", "0.0.0.0")


def _refuse(what):
    with open(_LOG, "a", encoding="utf-8") as handle:
        handle.write(repr(what) + "\\n")
    raise OSError(f"network refused in this test: {what!r}")


def _local(address):
    return not isinstance(address, tuple) or str(address[0]).startswith(_LOCAL)


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    return _connect(self, address) if _local(address) else _refuse(address)


def connect_ex(self, address):
    return _connect_ex(self, address) if _local(address) else _refuse(address)


def getaddrinfo(host, *args, **kwargs):
    return _getaddrinfo(host, *args, **kwargs) if host is None or str(host).startswith(_LOCAL) else _refuse(host)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A 2-layer hidden-32 BERT classifier with the bundled tokenizer, saved like a Hub folder."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from tests.conftest import tiny_config

    folder = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(tiny_config("bert")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _run_offline(tmp_path: Path, model_dir: Path, tracker: str, env: dict[str, str]) -> tuple[Path, Path]:
    """Run the classification recipe as a user would, offline and with the network refused; returns its output
    folder and the file of refused network calls."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(textwrap.dedent(_NO_NETWORK), encoding="utf-8")
    out, refused = tmp_path / "runs" / "classification" / "movie_tiny", tmp_path / "refused.txt"
    args = recipe_args(model_dir, out, "--num_train_epochs", "1", "--save_strategy", "no")
    args[args.index("--report_to") + 1] = tracker
    run_env = {**os.environ, **env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"),
               "OMP_NUM_THREADS": "1", "TLNLP_TEST_NETWORK_LOG": str(refused),
               "PYTHONPATH": os.pathsep.join([str(guard), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, str(ROOT / "recipes" / "classification.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=run_env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out, refused


def _logged_eval_loss(out: Path) -> float:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return next(row["eval_loss"] for row in history if "eval_loss" in row)


def test_report_to_trackio_stores_the_run_locally_and_offline(tmp_path, tiny_model_dir):
    pytest.importorskip("trackio", reason="trackio comes with the dev extra: pip install -e '.[dev]'")
    store = tmp_path / "trackio"
    out, refused = _run_offline(tmp_path, tiny_model_dir, "trackio", {"TRACKIO_DIR": str(store)})
    assert not refused.exists(), f"the run reached for the network: {refused.read_text()}"
    databases = sorted(store.glob("*.db"))
    assert [db.stem for db in databases] == ["classification"], "project: the folder that holds the output folder"
    with sqlite3.connect(databases[0]) as db:
        rows = db.execute("SELECT run_name, step, metrics FROM metrics ORDER BY id").fetchall()
    assert {name for name, _, _ in rows} == {rows[0][0]} and rows[0][0].startswith("movie_tiny-")
    logged = [json.loads(metrics) for _, _, metrics in rows]
    assert any("train/loss" in row for row in logged), logged[:3]
    eval_rows = [row for row in logged if "eval/loss" in row]
    assert eval_rows and eval_rows[0]["eval/loss"] == pytest.approx(_logged_eval_loss(out))
    assert eval_rows[0]["eval/accuracy"] == pytest.approx(
        json.loads((out / "eval_results.json").read_text())["eval_accuracy"])


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                    reason="mlflow comes with the tracking extra (pip install 'tlnlp[tracking]'), not the dev one")
def test_report_to_mlflow_stores_the_run_locally_and_offline(tmp_path, tiny_model_dir):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out, refused = _run_offline(tmp_path, tiny_model_dir, "mlflow",
                                {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "tlnlp-test"})
    assert not refused.exists(), f"the run reached for the network: {refused.read_text()}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tlnlp-test")
    # transformers ends its MLflow run when training ends; the evaluation after it goes to a run MLflow names
    (run,) = [r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name.startswith("movie_tiny-")]
    history = client.get_metric_history(run.info.run_id, "eval_loss")
    assert history and history[0].value == pytest.approx(_logged_eval_loss(out))
    assert client.get_metric_history(run.info.run_id, "loss")


@pytest.mark.parametrize("tracker", ["trackio", "mlflow"])
def test_missing_tracker_stops_the_run_before_any_work_naming_the_extra(tmp_path, monkeypatch, capsys, tracker):
    monkeypatch.setitem(sys.modules, tracker, None)  # `import trackio` fails, find_spec finds nothing
    out = tmp_path / "never"
    parsed = parse_args(*TYPES, args=recipe_args(tmp_path / "no_model_needed", out, "--report_to", tracker))
    with pytest.raises(SystemExit) as stop, user_errors():
        load_recipe("classification").main(*parsed)
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: report_to=['{tracker}'] needs the {tracker} package: pip install 'tlnlp[tracking]'")
    assert not out.exists()


def test_check_trackers_passes_installed_and_core_trackers(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    check_trackers(["tensorboard"])
    check_trackers("none")
    check_trackers(None)
    with pytest.raises(TrackerMissingError, match=r"tlnlp\[tracking\]") as err:
        check_trackers("mlflow")
    assert isinstance(err.value, UserError) and isinstance(err.value, ImportError)


def _args(tmp_path, **kw) -> TrainingArguments:
    return TrainingArguments(output_dir=str(tmp_path / "runs" / "ulmfit" / "trec6"), use_cpu=True, **kw)


def test_trackio_gets_local_first_defaults(tmp_path, monkeypatch):
    pytest.importorskip("trackio")
    monkeypatch.delenv("TRACKIO_SPACE_ID", raising=False)
    args = _args(tmp_path, report_to="trackio")
    prepare_tracking(args)
    assert args.project == "ulmfit"
    assert args.run_name.startswith("trec6-")
    assert args.trackio_static_space_id is False  # no Space on push unless asked for


def test_what_the_user_set_stays(tmp_path, monkeypatch):
    pytest.importorskip("trackio")
    monkeypatch.delenv("TRACKIO_SPACE_ID", raising=False)
    args = _args(tmp_path, report_to=["trackio"], project="mine", run_name="first",
                 trackio_static_space_id="me/board")
    prepare_tracking(args)
    assert (args.project, args.run_name, args.trackio_static_space_id) == ("mine", "first", "me/board")
    monkeypatch.setenv("TRACKIO_SPACE_ID", "me/live")
    spaced = _args(tmp_path, report_to="trackio")
    prepare_tracking(spaced)
    assert spaced.trackio_static_space_id is None  # a Space asked for: transformers' own behaviour


def test_tensorboard_runs_are_left_as_they_are(tmp_path):
    args = _args(tmp_path, report_to="tensorboard")
    prepare_tracking(args)
    assert (args.project, args.run_name, args.trackio_static_space_id) == ("huggingface", None, None)


def test_missing_gguf_names_the_llm_extra(monkeypatch):
    from tlnlp.models.gguf import GGUFPackageError, _require_gguf

    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(GGUFPackageError, match=r"pip install 'tlnlp\[llm\]'") as err:
        _require_gguf()
    assert isinstance(err.value, UserError) and isinstance(err.value, ImportError)
