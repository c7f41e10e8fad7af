"""Ladder strategies that train on another labelled dataset first: staged:<source> and source_only:<source>."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import pytest

from tests.unit.compare.conftest import ladder_args
from tlnlp.compare import CompareArgs, get_strategy, run_compare
from tlnlp.compare.transfer_strategies import source_dataset
from tlnlp.registry import RegistryError


def test_names_parse_into_families_with_a_source_and_a_rate(tmp_path):
    assert source_dataset("amazon_sentiment") == "bundled:amazon_sentiment"
    assert source_dataset("org/reviews") == "org/reviews" and source_dataset("bundled:trec6") == "bundled:trec6"
    assert get_strategy("staged:amazon_sentiment").kind == "trained"
    assert get_strategy("source_only:amazon_sentiment").uses_labels is False
    args = CompareArgs(output_dir=str(tmp_path), strategies=["staged:amazon_sentiment", "staged:trec6"],
                       learning_rates=["staged:trec6=1e-4"])
    assert args.learning_rate("staged:amazon_sentiment") == 5e-5 and args.learning_rate("staged:trec6") == 1e-4
    with pytest.raises(ValueError, match="strategies"):
        CompareArgs(output_dir=str(tmp_path), strategies=["stagd:amazon_sentiment"])
    with pytest.raises(ValueError, match="transfer_source_samples"):
        CompareArgs(output_dir=str(tmp_path), strategies=["staged:trec6"], transfer_source_samples=0)
    with pytest.raises(ValueError, match="transfer_source_early_stopping_patience=-1 must be 0"):
        CompareArgs(output_dir=str(tmp_path), strategies=["staged:trec6"], transfer_source_early_stopping_patience=-1)


def test_staged_cells_start_from_a_source_model_trained_once_per_seed(tiny_bert_folder, sentiment_csv, tmp_path):
    names = ["staged:amazon_sentiment", "staged:trec6", "staged_rehearsal:amazon_sentiment",
             "source_only:amazon_sentiment"]
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=names,
                                      transfer_source_samples=24, transfer_rehearsal_samples=5,
                                      learning_rates=["staged=1e-3", "staged_rehearsal=1e-3"]))
    rows = {(r["strategy"], r["budget"]): r for r in result.rows}
    assert set(rows) == {(n, b) for n in names[:3] for b in (2, 4)} | {(names[3], 0)}
    sources = sorted((tmp_path / "ladder" / "cells" / "sources").iterdir())
    assert len(sources) == 2  # one per source for seed 0, shared by both budgets and by source_only
    done = [json.loads((s / "source_done.json").read_text()) for s in sources]
    assert sorted(d["source"] for d in done) == ["bundled:amazon_sentiment", "bundled:trec6"]
    assert all(d["rows"] == 24 and 0 <= d["source_test_accuracy"] <= 1 for d in done)
    for record in result.records:
        assert record["source"].startswith("bundled:") and record["source_rows"] == 24
    # source_only scores the test rows in their order: the same accuracy as the source model's own pipeline
    from tlnlp import load_pipeline

    amazon = next(s for s, d in zip(sources, done, strict=True) if d["source"] == "bundled:amazon_sentiment")
    texts = [row[0] for row in csv.reader((sentiment_csv / "test.csv").open())][1:]
    gold = [row[1] for row in csv.reader((sentiment_csv / "test.csv").open())][1:]
    predicted = [p["label"] for p in load_pipeline(amazon)(texts)]
    (only,) = [r for r in result.records if r["strategy"] == "source_only:amazon_sentiment"]
    right = sum(a == b for a, b in zip(predicted, gold, strict=True))
    assert only["metrics"]["accuracy"] == pytest.approx(right / len(gold))
    staged = [r for r in result.records if r["strategy"] == "staged:trec6"]
    assert [r["n_train"] for r in staged] == [4, 8] and all(r["learning_rate"] == 1e-3 for r in staged)
    assert all("source_test_accuracy_after" not in r for r in staged)  # other labels: nothing to keep
    same = [r for r in result.records if r["strategy"] == "staged:amazon_sentiment"]
    assert all(0 <= r["source_test_accuracy_after"] <= 1 for r in same)
    rehearsed = [r for r in result.records if r["strategy"] == "staged_rehearsal:amazon_sentiment"]
    assert [r["n_train"] for r in rehearsed] == [4 + 5, 8 + 5] and all(r["rehearsal_rows"] == 5 for r in rehearsed)


def test_source_stage_can_stop_early_on_the_sources_own_validation_rows(tiny_bert_folder, sentiment_csv, tmp_path,
                                                                        monkeypatch):
    from tlnlp.compare import transfer_strategies

    built = []
    real = transfer_strategies.build_trainer

    def recording(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(transfer_strategies, "build_trainer", recording)
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv,
                                      strategies=["source_only:amazon_sentiment"], transfer_source_samples=24,
                                      transfer_source_epochs=5, transfer_source_learning_rate=1e-3,
                                      transfer_source_early_stopping_patience=1))
    (source,) = built
    assert len(source.eval_dataset) == 298  # amazon's own validation split, not a target row
    assert source.args.load_best_model_at_end and source.args.metric_for_best_model == "accuracy"
    (folder,) = (tmp_path / "ladder" / "cells" / "sources").iterdir()
    found = json.loads((folder / "source_done.json").read_text())["source_validation"]
    curve = found["accuracy_by_epoch"]
    assert [epoch for epoch, _ in curve] == [float(e) for e in range(1, len(curve) + 1)]
    assert found["epochs_trained"] == len(curve) and found["best_accuracy"] == max(a for _, a in curve)
    assert curve[int(found["best_epoch"]) - 1][1] == found["best_accuracy"]
    assert len(curve) == 5 or len(curve) - found["best_epoch"] == 1  # all epochs, or stopped one after the best
    (record,) = result.records
    assert record["source_best_epoch"] == found["best_epoch"]


@pytest.mark.parametrize("name", ["source_only:trec6", "staged_rehearsal:trec6"])
def test_source_only_and_rehearsal_refuse_a_source_with_other_labels(tiny_bert_folder, sentiment_csv, tmp_path,
                                                                      name):
    with pytest.raises(ValueError, match="are not the target's"):
        run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=[name],
                                 transfer_source_samples=12, learning_rates=["staged_rehearsal=1e-3"]))


def test_multitask_cells_train_the_target_rows_with_each_source(tiny_bert_folder, sentiment_csv, tmp_path):
    name = "multitask:amazon_sentiment+trec6"
    assert get_strategy(name).kind == "trained"
    with pytest.raises(RegistryError, match="multitask:"):
        get_strategy("multitask:")  # no source
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=[name],
                                      budgets=["2"], transfer_source_samples=16, learning_rates=["multitask=1e-3"]))
    (record,) = result.records
    assert record["n_train"] == 4 and record["n_test"] == 24 and 0 <= record["metrics"]["accuracy"] <= 1
    assert record["sources"] == ["bundled:amazon_sentiment", "bundled:trec6"]
    assert 0 <= record["source1_test_accuracy_after"] <= 1 and 0 <= record["source2_test_accuracy_after"] <= 1


def test_dann_cells_use_no_target_label_and_score_the_ladders_test_rows(tiny_bert_folder, sentiment_csv, tmp_path,
                                                                       monkeypatch):
    from tlnlp.compare import joint_strategies

    trained = []
    real = joint_strategies.run_domain_adaptation

    def recording(*args, **kwargs):
        trained.append(args[1].dataset_name)
        return real(*args, **kwargs)

    monkeypatch.setattr(joint_strategies, "run_domain_adaptation", recording)
    name = "dann:amazon_sentiment"
    assert get_strategy(name).uses_labels is False
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=[name],
                                      budgets=["2", "4"], transfer_source_samples=24, selection="cv",
                                      selection_folds=2))
    (record,) = result.records
    assert record["n_train"] == 0 and record["n_test"] == 24 and 0 <= record["metrics"]["accuracy"] <= 1
    assert record["source"] == "bundled:amazon_sentiment" and 0 <= record["source_test_accuracy"] <= 1
    assert record["a_distance_before"] is None  # 48 target texts: too few to hold out for the A-distance
    assert record["train_time_s"] > 0
    # trained once: the in-budget scores on both budgets' rows read the kept model
    assert trained == ["bundled:amazon_sentiment"]
    (kept,) = (tmp_path / "ladder" / "cells" / "dann").iterdir()
    assert (kept / "done.json").is_file() and (kept / "model.safetensors").is_file()
    scored = [json.loads(path.read_text()) for path in (tmp_path / "ladder" / "cells" / "in_budget").glob("*.json")]
    assert sorted(r["n_test"] for r in scored) == [4, 8]  # each budget's labelled rows, never the test split


def test_staged_cells_choose_the_target_stages_rate_in_budget(tiny_bert_folder, sentiment_csv, tmp_path):
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv,
                                      strategies=["staged:amazon_sentiment"], budgets=["4"], selection="cv",
                                      selection_folds=2, transfer_source_samples=16,
                                      learning_rates=["staged=1e-3"]))
    (record,) = result.records
    chosen = record["selection"]
    assert chosen["family"] == "trained" and chosen["folds"] == 2 and len(chosen["grid"]) == 4
    assert record["learning_rate"] == chosen["chosen"]["learning_rate"]  # the final cell trains with the choice
    assert len(list((tmp_path / "ladder" / "cells" / "sources").iterdir())) == 1  # folds start from the same source


def test_a_pooled_source_draws_its_rows_evenly_from_sources_with_the_same_labels(tiny_bert_folder, sentiment_csv,
                                                                                  tmp_path):
    from tlnlp.compare import transfer_strategies

    name = "source_only:amazon_sentiment+nyt_sentiment"
    assert transfer_strategies.source_dataset("amazon_sentiment+nyt_sentiment") == (
        "bundled:amazon_sentiment+bundled:nyt_sentiment")
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=[name],
                                      transfer_source_samples=24))
    (record,) = result.records
    assert record["source"] == "bundled:amazon_sentiment+bundled:nyt_sentiment" and record["source_rows"] == 24
    assert 0 <= record["metrics"]["accuracy"] <= 1 and 0 <= record["source_test_accuracy"] <= 1
    # the pooled rows: half from each source, renumbered to the first source's label order
    ctx = SimpleNamespace(args=CompareArgs(output_dir=str(tmp_path), strategies=[name], transfer_source_samples=24),
                          data_args=SimpleNamespace(max_seq_length=32))
    pooled = transfer_strategies._read_source(ctx, "amazon_sentiment+nyt_sentiment", 0)
    alone = [transfer_strategies._read_one(ctx, part, 0, 12, 2) for part in ("amazon_sentiment", "nyt_sentiment")]
    assert sorted(pooled.splits["train"]["text"]) == sorted([*alone[0].splits["train"]["text"],
                                                             *alone[1].splits["train"]["text"]])
    assert len(pooled.splits["test"]) == len(alone[0].splits["test"]) + len(alone[1].splits["test"]) == 500
    gold = dict(zip(alone[1].splits["train"]["text"], alone[1].splits["train"]["label"], strict=True))
    mixed = dict(zip(pooled.splits["train"]["text"], pooled.splits["train"]["label"], strict=True))
    assert all(pooled.labels[mixed[text]] == alone[1].labels[label] for text, label in gold.items())


def test_malformed_pools_are_refused_with_the_fix(tiny_bert_folder, sentiment_csv, tmp_path):
    with pytest.raises(ValueError, match="empty name between"):
        CompareArgs(output_dir=str(tmp_path), strategies=["staged:amazon_sentiment++nyt_sentiment"])
    with pytest.raises(ValueError, match="DANN adapts from one source"):
        CompareArgs(output_dir=str(tmp_path), strategies=["dann:amazon_sentiment+nyt_sentiment"])
    with pytest.raises(ValueError, match="must share their label names"):
        run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv,
                                 strategies=["source_only:amazon_sentiment+trec6"], transfer_source_samples=12))
