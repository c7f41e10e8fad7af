"""Ladder strategies that train on another labelled dataset first: staged:<source> and source_only:<source>."""

from __future__ import annotations

import json

import pytest

from tests.unit.compare.conftest import ladder_args
from tlnlp.compare import CompareArgs, get_strategy, run_compare
from tlnlp.compare.transfer_strategies import source_dataset


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


def test_staged_cells_start_from_a_source_model_trained_once_per_seed(tiny_bert_folder, sentiment_csv, tmp_path):
    names = ["staged:amazon_sentiment", "staged:trec6", "source_only:amazon_sentiment"]
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=names,
                                      transfer_source_samples=24, learning_rates=["staged=1e-3"]))
    rows = {(r["strategy"], r["budget"]): r for r in result.rows}
    assert set(rows) == {(n, b) for n in names[:2] for b in (2, 4)} | {(names[2], 0)}
    sources = sorted((tmp_path / "ladder" / "cells" / "sources").iterdir())
    assert len(sources) == 2  # one per source for seed 0, shared by both budgets and by source_only
    done = [json.loads((s / "source_done.json").read_text()) for s in sources]
    assert sorted(d["source"] for d in done) == ["bundled:amazon_sentiment", "bundled:trec6"]
    assert all(d["rows"] == 24 and 0 <= d["source_test_accuracy"] <= 1 for d in done)
    for record in result.records:
        assert record["source"].startswith("bundled:") and record["source_rows"] == 24
    staged = [r for r in result.records if r["strategy"] == "staged:trec6"]
    assert [r["n_train"] for r in staged] == [4, 8] and all(r["learning_rate"] == 1e-3 for r in staged)


def test_source_only_refuses_a_source_with_other_labels(tiny_bert_folder, sentiment_csv, tmp_path):
    with pytest.raises(ValueError, match="are not the target's"):
        run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv,
                                 strategies=["source_only:trec6"], transfer_source_samples=12))
