"""In-budget selection: stratified folds of the budget's rows, the choice, the table's columns and the regret."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.compare.conftest import record
from tlnlp.compare import CompareArgs, aggregate, write_tables
from tlnlp.compare.selection import SEARCH_SPACES, cv_splits, select, selection_settings
from tlnlp.compare.summary import format_recommendation, recommend


@pytest.mark.parametrize(("per_class", "folds"), [(8, 5), (4, 4), (3, 3), (2, 2)])
def test_cv_splits_are_stratified_and_hold_out_every_row_once(per_class, folds):
    labels = np.repeat([0, 1, 2], per_class)
    splits = cv_splits(labels, seed=0)
    assert len(splits) == folds  # k = min(5, smallest class), leave-one-per-class-out below 5
    held = np.concatenate([h for _, h in splits])
    assert sorted(held.tolist()) == list(range(len(labels)))  # every row held out exactly once
    for train, part in splits:
        assert not set(train) & set(part) and len(train) + len(part) == len(labels)
        assert set(labels[part]) == {0, 1, 2} and set(labels[train]) == {0, 1, 2}  # every class on both sides
    assert [h.tolist() for _, h in cv_splits(labels, seed=0)] == [h.tolist() for _, h in splits]  # seeded
    assert len(cv_splits(labels, seed=0, repeats=3)) == 3 * folds


def test_cv_splits_respect_max_folds_and_refuse_a_single_row_class():
    labels = np.array([0] * 10 + [1] * 10)
    assert len(cv_splits(labels, seed=1, max_folds=3)) == 3
    assert len(cv_splits(labels, seed=1, max_folds=1)) == 2  # never below 2
    assert cv_splits(np.array([0, 0, 0, 1]), seed=0) == []  # one row of class 1: it cannot be trained and held out
    assert cv_splits(np.array([0, 0, 0]), seed=0) == []


def test_select_scores_pooled_out_of_fold_predictions_and_keeps_the_default_on_ties():
    labels = np.array([0, 1] * 4)
    splits = cv_splits(labels, seed=0)
    seen = []

    def predict(params, fold, train, held):
        seen.append((fold, train.tolist(), held.tolist()))
        right = np.eye(2)[labels[held]] * params["sharp"]
        return right if params["good"] else right[:, ::-1]

    grid = [{"good": False, "sharp": 1.0}, {"good": True, "sharp": 1.0}, {"good": True, "sharp": 5.0},
            {"good": True, "sharp": 1.0}]
    found = select(grid, labels, splits, predict)
    assert [p["cv_score"] for p in found["grid"]] == [0.0, 1.0, 1.0, 1.0]
    assert found["chosen"] == {"good": True, "sharp": 5.0}  # same accuracy, lower log-loss
    assert found["cv_score"] == 1.0 and found["folds"] == 4 and found["repeats"] == 1 and found["rows"] == 8
    assert len(seen) == len(grid) * len(splits)
    assert all(set(train).isdisjoint(held) for _, train, held in seen)
    nothing = select(grid, labels, [], predict)
    assert nothing["chosen"] == grid[0] and nothing["cv_score"] is None and "single labelled row" in nothing["reason"]


def test_select_with_then_chooses_the_count_after_the_rest_among_fewer_points():
    labels = np.array([0, 1] * 4)
    splits = cv_splits(labels, seed=0)
    # head "a" is best with no self-training; head "b" with 8 texts is the best point of all (what a joint choice
    # of every product would pick)
    right = {("a", 0): 1.0, ("b", 0): 0.5, ("a", 8): 0.75, ("b", 8): 1.0, ("a", 32): 0.5, ("b", 32): 0.0}
    scored = []

    def predict(params, fold, train, held):
        key = (params["head"], params["count"])
        scored.append(key)
        gold = labels[held]
        wrong = np.arange(len(held)) >= round(right[key] * len(held))  # the first share of each fold right
        guess = np.where(wrong, 1 - gold, gold)
        return np.eye(2)[guess] * (2.0 if key == ("b", 8) else 1.0)  # ("b", 8): surer, wins the tie on log-loss

    grid = [{"head": h, "count": c} for c in (0, 8, 32) for h in ("a", "b")]
    joint = select(grid, labels, splits, predict)
    assert joint["chosen"] == {"head": "b", "count": 8} and "then" not in joint
    scored.clear()
    found = select(grid, labels, splits, predict, then="count")
    assert found["then"] == "count"
    assert found["chosen"] == {"head": "a", "count": 0} and found["cv_score"] == 1.0
    # stage 1: both heads at count 0; stage 2: head a's other counts; head b's are never scored
    assert [p["params"] for p in found["grid"]] == [{"head": "a", "count": 0}, {"head": "b", "count": 0},
                                                    {"head": "a", "count": 8}, {"head": "a", "count": 32}]
    assert ("b", 8) not in scored and ("b", 32) not in scored


def test_selection_settings_follow_the_mode(tmp_path):
    def settings(mode, family):
        args = CompareArgs(output_dir=str(tmp_path), selection=mode, selection_folds=3)
        return selection_settings(args, family)

    assert all(settings("none", family) == {} for family in SEARCH_SPACES)
    assert settings("heads", "trained") == {} and settings("heads", "setfit_head") == {}
    head = settings("heads", "head")["selection"]
    assert head["max_folds"] == 3 and head["metric"] == "accuracy" and head["grid"][0] == {"C": 1.0}
    assert all(settings("cv", family) for family in SEARCH_SPACES)
    assert settings("cv", None) == {}
    assert settings("heads", "self_trained_head")["selection"]["then"] == "self_training_per_class"
    assert settings("cv", "setfit_self_trained_anchored_head")["selection"]["then"] == "self_training_per_class"
    assert "then" not in settings("heads", "anchored_head")["selection"]  # the key of other families unchanged
    assert SEARCH_SPACES["trained"]["grid"][0] == {"learning_rate_scale": 1.0, "epochs_scale": 1.0}  # the default
    setfit = SEARCH_SPACES["setfit_head"]["grid"]
    assert setfit[0] == {"setfit_num_epochs": 1, "C": 1.0}  # the library's body, scikit-learn's head
    assert len(setfit) == 3 * len(SEARCH_SPACES["head"]["grid"])  # every head on each body length
    with pytest.raises(ValueError, match="selection='all' is not valid; choose one of: none, heads, cv"):
        CompareArgs(output_dir=str(tmp_path), selection="all")
    with pytest.raises(ValueError, match="selection_folds=1 must be at least 2"):
        CompareArgs(output_dir=str(tmp_path), selection_folds=1)


def _selected(accuracy, cv, chosen, log_loss=0.5):
    return record(accuracy, selection={"metric": "accuracy", "cv_score": cv, "cv_log_loss": log_loss,
                                       "chosen": chosen}, selection_time_s=3.0)


def _slots():
    return [("zero_shot_embeddings", "zero_shot", 0, record(0.70)),
            ("full", "trained", 8, _selected(0.80, 0.60, {"learning_rate": 5e-5, "epochs": 40.0})),
            ("full", "trained", 8, _selected(0.84, 0.64, {"learning_rate": 1e-4, "epochs": 40.0})),
            ("feature_extraction", "fitted", 8, _selected(0.75, 0.90, {"C": 10.0})),
            ("feature_extraction", "fitted", 8, _selected(0.77, 0.80, {"C": 10.0})),
            ("lora", "trained", 8, record(0.95)),  # no selection: not a candidate, but the test-best
            ("full", "trained", 32, _selected(0.90, 0.70, {"learning_rate": 5e-5, "epochs": 10.0})),
            ("feature_extraction", "fitted", 32, _selected(0.85, 0.60, {"C": 1.0}))]


def test_table_has_the_cv_score_and_the_choice():
    rows = {(r["strategy"], r["budget"]): r for r in aggregate(_slots())}
    full = rows[("full", 8)]
    assert full["cv_score_mean"] == pytest.approx(0.62) and full["cv_seeds"] == 2
    assert full["chosen"] == "lr 5e-05, epochs 40 (1/2 seeds)" and full["selection_time_s"] == 3.0
    assert rows[("feature_extraction", 8)]["chosen"] == "C 10"
    assert "cv_score_mean" not in rows[("lora", 8)] and "chosen" not in rows[("lora", 8)]


def test_recommendation_picks_by_in_budget_scores_and_reports_the_regret(tmp_path):
    rows = aggregate(_slots())
    found = {e["budget"]: e for e in recommend(rows, {("zero_shot_embeddings", 8): [0.5],
                                                      ("zero_shot_embeddings", 32): [0.8, 0.9]})}
    eight = found[8]
    assert eight["pick"] == "feature_extraction" and eight["pick_score"] == pytest.approx(0.85)
    assert eight["test_best"] == "lora" and eight["regret"] == pytest.approx(0.95 - 0.76)
    assert set(eight["in_budget_scores"]) == {"full", "feature_extraction", "zero_shot_embeddings"}
    thirty_two = found[32]  # zero-shot's score on the 32-shot rows beats both CV scores; its test score is 0.70
    assert thirty_two["pick"] == "zero_shot_embeddings" and thirty_two["pick_score"] == pytest.approx(0.85)
    assert thirty_two["test_best"] == "full" and thirty_two["regret"] == pytest.approx(0.20)
    assert recommend(aggregate([s for s in _slots() if "selection" not in s[3]]))[0]["pick"] is None
    text = format_recommendation(list(found.values()))
    assert "| 8 | feature_extraction (0.8500) | 0.7600 | lora | 0.9500 | 0.1900 | 3 |" in text
    markdown = write_tables(rows, tmp_path, {"recommendation": list(found.values())})["markdown"].read_text()
    assert "| cv score | chosen |" in markdown and "0.6200 ± 0.0283" in markdown
    assert "Recommendation (in-budget scores only" in markdown and text in markdown


def test_recommendation_ties_go_to_the_lower_cv_log_loss_and_zero_shot_loses_them():
    slots = [("zero_shot_embeddings", "zero_shot", 0, record(0.70)),
             ("feature_extraction", "fitted", 8, _selected(0.60, 0.75, {"C": 1.0}, log_loss=0.6)),
             ("feature_extraction_zero_shot_head", "fitted", 8, _selected(0.72, 0.75, {"C": 1.0}, log_loss=0.4))]
    (entry,) = recommend(aggregate(slots), {("zero_shot_embeddings", 8): [0.75]})
    assert entry["pick"] == "feature_extraction_zero_shot_head" and entry["regret"] == 0.0
