"""Where cells run (local processes, Ray) and the cell cache keyed by the code that computes a cell."""

import importlib.util
import json
import sys

import pytest

from tests.unit.compare.conftest import ladder_args as _args
from tlnlp.compare import CompareArgs, Strategy, run_compare
from tlnlp.compare.cells import CellCache
from tlnlp.compare.code_keys import code_digest, code_files
from tlnlp.compare.executors import cpu_slots


def test_cpu_slots_share_the_cores_out_and_wrap_when_asked_for_more():
    assert cpu_slots(2, None, cores=[0, 1]) == [[0], [1]]
    assert cpu_slots(2, None, cores=[0, 1, 2, 3]) == [[0, 1], [2, 3]]
    assert cpu_slots(3, None, cores=[0, 1]) == [[0], [1], [0]]
    assert cpu_slots(1, 2, cores=[4, 5, 6]) == [[4, 5]]


@pytest.mark.parametrize(("flags", "message"), [
    ({"executor": "dask"}, "executor='dask' is not valid"),
    ({"workers": 0}, "workers=0 must be at least 1"),
    ({"cell_threads": 0}, "cell_threads=0 must be at least 1"),
    ({"ray_address": "auto"}, "add --executor ray"),
])
def test_executor_flags_are_checked(tmp_path, flags, message):
    with pytest.raises(ValueError, match=message):
        CompareArgs(output_dir=str(tmp_path), **flags)


def _strategy_module(folder, name, body):
    (folder / f"{name}.py").write_text(
        "from tlnlp.compare import budgets  # noqa: F401\n\n"
        f"def run(ctx, cell):\n    return {body}\n\n\ndef settings(ctx, budget):\n    return {{}}\n")
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return Strategy(name=name, kind="fitted", description="probe", run=module.run, settings=module.settings)


def test_the_code_hash_covers_the_strategy_module_and_what_it_imports(tmp_path):
    strategy = _strategy_module(tmp_path, "probe_strategy_a", "{'metrics': {}}")
    names = {f"{path.parent.name}/{path.name}" for path in code_files(strategy)}
    assert {"probe_strategy_a.py", "compare/budgets.py"} <= {n.split("/", 1)[-1] if n.startswith(tmp_path.name)
                                                             else n for n in names}
    before = code_digest(strategy)
    assert code_digest(strategy) == before  # stable
    edited = _strategy_module(tmp_path, "probe_strategy_a", "{'metrics': {'accuracy': 1.0}}")
    assert code_digest(edited) != before  # any edit of the strategy's code changes it


def test_the_code_hash_follows_the_trained_methods_own_imports():
    from tlnlp.compare.strategies import get_strategy

    # SetFit's method file imports the CPU dropout kernels: an edit there must reach its cells' key
    names = {f"{path.parent.name}/{path.name}" for path in code_files(get_strategy("setfit"))}
    assert {"setfit/method.py", "models/cpu_dropout.py"} <= names


def test_a_cell_computed_by_other_code_runs_again(tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch):
    from tlnlp.compare import runner

    args = _args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=["frozen_backbone"], budgets=["2"])
    assert run_compare(*args).cells_run == 1
    assert run_compare(*args).cells_run == 0  # same code: read from the cache
    cached = next((tmp_path / "ladder" / "cells").glob("*.json"))
    assert json.loads(cached.read_text())["code"]
    real = runner.strategy_code
    monkeypatch.setattr(runner, "strategy_code", lambda name: "edited-" + real(name))
    assert run_compare(*_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=["frozen_backbone"],
                              budgets=["2"], report_only=True)).cells_run == 0  # report_only shows the stale cell
    assert run_compare(*args).cells_run == 1  # the strategy's code changed: its cell is computed again
    assert run_compare(*args).cells_run == 0


def test_cache_get_refuses_a_record_of_other_code(tmp_path):
    cache = CellCache(tmp_path)
    cache.put("k", {"metrics": {"accuracy": 0.5}}, code="abc")
    assert cache.get("k", "abc")["metrics"] == {"accuracy": 0.5}
    assert cache.get("k", "other") is None and cache.get("k") is not None
    cache.put("old", {"metrics": {}})  # written before code hashes: stale for any code
    assert cache.get("old", "abc") is None


def _table(out):
    rows = json.loads((out / "compare_table.json").read_text())["rows"]
    return [(r["strategy"], r["budget"], r["accuracy_mean"], r["f1_macro_mean"], r["n_train"], r.get("lm_change_pct"))
            for r in rows]


@pytest.mark.slow
def test_two_local_workers_give_the_same_table_as_one(tiny_bert_folder, sentiment_csv, tmp_path):
    flags = {"strategies": ["full", "from_scratch", "zero_shot_embeddings"], "seeds": [0, 1], "cell_threads": 1,
             "check_forgetting": True, "forgetting_samples": 4}  # workers fit the probe's MLM head too
    one = run_compare(*_args(tiny_bert_folder, tmp_path / "one", sentiment_csv, **flags))
    two = run_compare(*_args(tiny_bert_folder, tmp_path / "two", sentiment_csv, workers=2, **flags))
    assert one.cells_run == two.cells_run == 9
    assert _table(tmp_path / "one") == _table(tmp_path / "two")
    assert {r["device"] for r in two.records} == {"cpu"}
    assert any(row[-1] for row in _table(tmp_path / "two"))  # the forgetting check ran in the workers


@pytest.mark.slow
def test_ray_executor_runs_the_cells_as_tasks(tiny_bert_folder, sentiment_csv, tmp_path):
    pytest.importorskip("ray")
    flags = {"strategies": ["frozen_backbone"], "seeds": [0], "cell_threads": 1}
    run_compare(*_args(tiny_bert_folder, tmp_path / "inline", sentiment_csv, **flags))
    remote = run_compare(*_args(tiny_bert_folder, tmp_path / "ray", sentiment_csv, executor="ray", **flags))
    assert remote.cells_run == 2
    assert _table(tmp_path / "inline") == _table(tmp_path / "ray")
