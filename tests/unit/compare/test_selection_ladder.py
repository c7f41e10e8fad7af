"""In-budget selection in the ladder: no test label reaches a choice, and the folds are the budget's own rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.unit.compare.conftest import ladder_args
from tlnlp.compare import run_compare

STRATEGIES = ["zero_shot_embeddings", "feature_extraction", "feature_extraction_zero_shot_head", "frozen_backbone"]


def _reversed_test_labels(monkeypatch):
    """Make the ladder read the test split with its label column reversed (each toy test label flips)."""
    from tlnlp.compare import runner

    real = runner.load_task_data

    def load(*args, **kwargs):
        data = real(*args, **kwargs)
        test = data.splits["test"]
        labels = list(reversed(test["label"]))
        splits = dict(data.splits) | {"test": test.map(lambda _, i: {"label": labels[i]}, with_indices=True)}
        return dataclasses.replace(data, splits=type(data.splits)(splits))

    monkeypatch.setattr(runner, "load_task_data", load)


def _by_cell(result):
    return {(r["strategy"], r["budget"], r["seed"]): r for r in result.records}


def test_shuffled_test_labels_change_no_choice_and_no_pick(tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch):
    settings = {"strategies": STRATEGIES, "budgets": ["4"], "selection": "cv", "selection_folds": 2}
    plain = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "plain", sentiment_csv, **settings))
    _reversed_test_labels(monkeypatch)
    shuffled = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "shuffled", sentiment_csv, **settings))
    assert shuffled.cells_run == plain.cells_run == len(STRATEGIES)
    before, after = _by_cell(plain), _by_cell(shuffled)
    assert before.keys() == after.keys()
    selected = [key for key, rec in before.items() if "selection" in rec]
    assert {key[0] for key in selected} == set(STRATEGIES) - {"zero_shot_embeddings"}
    for key in selected:
        assert before[key]["selection"] == after[key]["selection"], key  # every choice and every CV score
        assert before[key]["selection"]["folds"] == 2 and before[key]["selection"]["cv_score"] is not None
    # the same predictions met flipped test labels: every test accuracy a became 1 - a
    accuracies = {key: rec["metrics"]["accuracy"] for key, rec in before.items()}
    assert any(a != 0.5 for a in accuracies.values())
    assert all(after[key]["metrics"]["accuracy"] == pytest.approx(1 - a) for key, a in accuracies.items())
    for mine, theirs in zip(plain.recommendation, shuffled.recommendation, strict=True):
        assert mine["pick"] == theirs["pick"] is not None
        assert mine["in_budget_scores"] == theirs["in_budget_scores"]
    card = (tmp_path / "plain" / "README.md").read_text()
    assert "## Recommendation" in card and "| cv score | chosen |" in card and "Mode `cv`" in card
    table = (tmp_path / "plain" / "compare_table.md").read_text()
    assert f"| 4 | {plain.recommendation[0]['pick']} (" in table


def test_folds_are_drawn_from_the_budget_rows_only_and_budgets_nest(tiny_bert_folder, sentiment_csv, tmp_path,
                                                                     monkeypatch):
    from tlnlp.compare import strategies

    seen = []

    def fold_logits(ctx, cell, method, from_scratch, start, rows, hyper):
        seen.append((cell.budget, cell.seed, rows, ctx.budget_rows(cell.budget, cell.seed)))
        return np.zeros((len(rows[1]), 2))

    monkeypatch.setattr(strategies, "_fold_logits", fold_logits)
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, budgets=["2", "4"],
                                      seeds=[0, 1], strategies=["frozen_backbone"], selection="cv"))
    assert result.cells_run == 4
    grid = 4
    for budget, seed in ((2, 0), (2, 1), (4, 0), (4, 1)):
        mine = [(rows, budget_rows) for b, s, rows, budget_rows in seen if (b, s) == (budget, seed)]
        assert len(mine) == grid * budget  # k = the rows per class (2 and 4), for each grid point
        budget_rows = mine[0][1]
        for (train, held), _ in mine:
            assert set(train) | set(held) == set(budget_rows) and not set(train) & set(held)
        assert sorted(r for (_, held), _ in mine[:budget] for r in held) == sorted(budget_rows)
    for seed in (0, 1):  # the 2-shot rows (and so their folds) lie inside the 4-shot rows of the same seed
        small = next(rows for b, s, _, rows in seen if (b, s) == (2, seed))
        large = next(rows for b, s, _, rows in seen if (b, s) == (4, seed))
        assert set(small) < set(large)
    chosen = [r["selection"]["chosen"] for r in result.records]
    assert all(c == {"learning_rate": 2e-3, "epochs": 2.0} for c in chosen)  # all-zero logits tie: the default


def test_cv_mode_selects_setfit_heads_on_fold_bodies_and_sentence_fine_tuning_rates(
        tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch):
    from tlnlp.methods import METHODS

    setfit = METHODS.get("setfit")
    real, bodies = type(setfit).train_body, []

    def counting(self, encoder, inputs, args):
        bodies.append(len(inputs.texts))
        return real(self, encoder, inputs, args)

    monkeypatch.setattr(type(setfit), "train_body", counting)
    names = ["setfit", "setfit_zero_shot_head", "sentence_fine_tuning"]
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=names,
                                      budgets=["2"], selection="cv", setfit_max_steps=2,
                                      learning_rates=["sentence_fine_tuning=1e-3"]))
    # one body per fold (2 rows each) and body length (1, 2, 4 epochs), shared by both heads, then the full one
    assert sorted(bodies) == [2] * 6 + [4]
    records = {r["strategy"]: r for r in result.records}
    chosen = records["setfit"]["selection"]["chosen"]
    assert records["setfit"]["selection"]["family"] == "setfit_head" and "C" in chosen
    assert records["setfit"]["body_epochs"] == chosen["setfit_num_epochs"] in {1, 2, 4}
    assert {p["params"]["setfit_num_epochs"] for p in records["setfit"]["selection"]["grid"]} == {1, 2, 4}
    anchored = records["setfit_zero_shot_head"]
    assert anchored["head_prior_strength"] == anchored["selection"]["chosen"]["head_prior_strength"]
    tuned = records["sentence_fine_tuning"]
    assert tuned["learning_rate"] == tuned["selection"]["chosen"]["learning_rate"]
    assert tuned["selection"]["chosen"]["learning_rate"] in {5e-4, 1e-3, 2e-3}
    assert all(r["selection"]["folds"] == 2 and len(r["selection"]["grid"]) >= 4 for r in records.values())


def test_cv_mode_chooses_setfits_self_training_count_on_fold_bodies(tiny_bert_folder, sentiment_csv, tmp_path,
                                                                    monkeypatch):
    from tlnlp.compare import embedding_strategies

    heads, pools = [], []
    real, unlabeled = embedding_strategies._head_logits, embedding_strategies._unlabeled

    def recording(fold, y_train, params, seed, pool=None):
        heads.append((params.get("self_training_per_class"), None if pool is None else len(pool)))
        return real(fold, y_train, params, seed, pool)

    monkeypatch.setattr(embedding_strategies, "_head_logits", recording)
    monkeypatch.setattr(embedding_strategies, "_unlabeled", lambda *a: pools.append(unlabeled(*a)) or pools[-1])
    names = ["setfit_self_training", "setfit_zero_shot_head_self_training"]
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=names,
                                      budgets=["2"], selection="cv", setfit_max_steps=2))
    # every grid point's fold head self-trains on the fold body's embeddings of the cell's unlabelled texts
    assert {size for _, size in heads} == {len(texts) for texts in pools} and len(pools[0]) > 0
    assert {count for count, _ in heads} == {0, 8, 32, 128}
    for record in result.records:
        selection = record["selection"]
        assert selection["family"] == ("setfit_self_trained_anchored_head" if "zero_shot" in record["strategy"]
                                       else "setfit_self_trained_head")
        assert {p["params"]["self_training_per_class"] for p in selection["grid"]} == {0, 8, 32, 128}
        assert {p["params"]["setfit_num_epochs"] for p in selection["grid"]} == {1, 2, 4}
        assert record["self_training_per_class"] == selection["chosen"]["self_training_per_class"]
        assert record["body_epochs"] == selection["chosen"]["setfit_num_epochs"]
