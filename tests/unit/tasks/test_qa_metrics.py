"""SQuAD EM/F1 by the official v2.0 algorithm, on hand-made cases."""

from __future__ import annotations

import pytest

from tlnlp.tasks.qa import best_thresholds, compute_exact, compute_f1, normalize_answer, squad_metrics


@pytest.mark.parametrize(("raw", "normal"), [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  an   apple, a pear  ", "apple pear"),
    ("Theatre", "theatre"),  # 'the' only as a whole word
    ("U.S.A.", "usa"),
    ("", ""),
    ("the", ""),
])
def test_normalisation(raw, normal):
    assert normalize_answer(raw) == normal


def test_exact_and_f1_by_hand():
    assert compute_exact("Eiffel Tower", "the eiffel tower.") == 1
    assert compute_exact("Eiffel Tower", "Eiffel") == 0
    # gold 'big red dog' vs 'red dog house': 2 shared tokens, precision 2/3, recall 2/3
    assert compute_f1("big red dog", "red dog house") == pytest.approx(2 / 3)
    assert compute_f1("a b", "c d") == 0.0
    # repeated tokens count as often as both sides have them
    assert compute_f1("x x y", "x y y") == pytest.approx(2 / 3)


def test_empty_answers():
    assert compute_exact("", "") == 1 and compute_f1("", "") == 1.0
    assert compute_exact("", "something") == 0 and compute_f1("", "something") == 0.0
    assert compute_f1("something", "") == 0.0
    assert compute_f1("the", "") == 1.0  # normalises to empty on both sides


def test_max_over_gold_answers_and_no_answer_questions():
    refs = {"q1": ["Paris", "the city of Paris"], "q2": [], "q3": ["the"], "q4": ["1969"]}
    preds = {"q1": "city of Paris", "q2": "", "q3": "a guess", "q4": "in 1969"}
    result = squad_metrics(preds, refs)
    # q1: exact with the second gold; q2: correct no-answer; q3: gold normalises to nothing -> no-answer expected
    # q4: exact 0, F1 2*(1/2*1)/(1/2+1) = 2/3
    assert result["total"] == 4
    assert result["exact"] == pytest.approx(100 * 2 / 4)
    assert result["f1"] == pytest.approx(100 * (1 + 1 + 0 + 2 / 3) / 4)
    assert result["HasAns_total"] == 2 and result["NoAns_total"] == 2
    assert result["HasAns_exact"] == pytest.approx(50.0)
    assert result["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert result["NoAns_exact"] == pytest.approx(50.0) and result["NoAns_f1"] == pytest.approx(50.0)
    assert "best_f1" not in result


def test_v1_data_has_no_noans_keys():
    result = squad_metrics({"a": "x"}, {"a": ["x"]})
    assert result == {"exact": 100.0, "f1": 100.0, "total": 1, "HasAns_exact": 100.0, "HasAns_f1": 100.0,
                      "HasAns_total": 1}


def test_missing_prediction_is_an_error():
    with pytest.raises(ValueError, match="no prediction"):
        squad_metrics({}, {"q1": ["x"]})


def test_best_threshold_by_hand():
    # three questions: q1 answerable (span right), q2 unanswerable, q3 answerable (span wrong)
    refs = {"q1": ["red"], "q2": [], "q3": ["blue"]}
    spans = {"q1": "red", "q2": "green", "q3": "yellow"}
    odds = {"q1": -2.0, "q2": 1.0, "q3": 3.0}
    preds = {"q1": "red", "q2": "", "q3": ""}  # threshold 0: answer where odds <= 0
    result = squad_metrics(preds, refs, null_odds=odds, span_predictions=spans)
    assert result["exact"] == pytest.approx(200 / 3)
    # answering only q1 (threshold in [-2, 1)) gets q1 and q2 right: 2/3, the best reachable
    assert result["best_exact"] == pytest.approx(200 / 3)
    assert result["best_exact_thresh"] == -2.0
    # replaying the threshold gives the best score
    thr = result["best_f1_thresh"]
    replay = {q: (spans[q] if odds[q] <= thr else "") for q in refs}
    assert squad_metrics(replay, refs)["f1"] == pytest.approx(result["best_f1"])


def test_best_threshold_when_abstaining_everywhere_is_best():
    score, thr = best_thresholds({"a": 0.0, "b": 0.0}, {"a": 0.5, "b": 2.0}, {"a": False, "b": False},
                                 {"a": True, "b": True})
    assert score == 100.0 and thr < 0.5  # below every odds: nobody is answered
