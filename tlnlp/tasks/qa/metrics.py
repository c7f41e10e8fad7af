"""Exact match and F1 for extractive question answering, by the official SQuAD v2.0 evaluation algorithm.

Answers are normalised (lower case, punctuation removed, the articles *a*, *an*, *the* removed, whitespace
folded); a prediction scores the maximum over the gold answers; a question whose gold answers are all empty
after normalisation (SQuAD v2's unanswerable questions) expects the empty answer ``""``. Scores are on the
0-100 scale, under the keys of the official script and of the Hugging Face question-answering example:
``exact``, ``f1``, ``total``, ``HasAns_exact``, ``HasAns_f1``, ``HasAns_total``, ``NoAns_exact``, ``NoAns_f1``,
``NoAns_total`` and, given null-score differences, ``best_exact``, ``best_exact_thresh``, ``best_f1`` and
``best_f1_thresh``. Everything works offline.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Mapping, Sequence

__all__ = ["best_thresholds", "compute_exact", "compute_f1", "normalize_answer", "squad_metrics"]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the, and fold whitespace (SQuAD's normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def compute_exact(gold: str, prediction: str) -> int:
    """1 when the normalised answers are equal, else 0."""
    return int(normalize_answer(gold) == normalize_answer(prediction))


def compute_f1(gold: str, prediction: str) -> float:
    """Token-overlap F1 of the normalised answers; when either is empty, 1.0 if both are, else 0.0."""
    gold_tokens, pred_tokens = _tokens(gold), _tokens(prediction)
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _gold_answers(answers: Sequence[str]) -> list[str]:
    """The gold answers that survive normalisation; ``[""]`` (no answer) when none do."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def _raw_scores(predictions: Mapping[str, str],
                references: Mapping[str, Sequence[str]]) -> tuple[dict[str, int], dict[str, float]]:
    exact, f1 = {}, {}
    for qid, answers in references.items():
        gold = _gold_answers(answers)
        prediction = predictions[qid]
        exact[qid] = max(compute_exact(g, prediction) for g in gold)
        f1[qid] = max(compute_f1(g, prediction) for g in gold)
    return exact, f1


def best_thresholds(scores: Mapping[str, float], null_odds: Mapping[str, float],
                    has_answer: Mapping[str, bool], answered: Mapping[str, bool]) -> tuple[float, float]:
    """The best score reachable by thresholding the null-score differences, and that threshold.

    A question is answered with its best span when its null odds are at most the threshold, and left
    unanswered otherwise (the rule of ``--null_score_diff_threshold``). Questions are visited in increasing
    odds, as in the official script; when leaving every question unanswered is best, the threshold returned
    lies just below the smallest odds (the official script returns 0.0 there, which need not reproduce the
    score).

    Args:
        scores: Per question, the score (exact or F1, 0-1) of its best non-null answer.
        null_odds: Per question, null score minus best span score.
        has_answer: Per question, whether it has a gold answer.
        answered: Per question, whether its best non-null answer is a non-empty text.

    Returns:
        ``(best score on the 0-100 scale, threshold)``.
    """
    if not scores:
        return 0.0, 0.0
    current = best = float(sum(1 for qid in scores if not has_answer[qid]))
    order = sorted(scores, key=lambda qid: null_odds[qid])
    threshold = null_odds[order[0]] - 1.0
    for qid in order:
        if has_answer[qid]:
            current += scores[qid]
        elif answered[qid]:
            current -= 1
        if current > best:
            best, threshold = current, null_odds[qid]
    return 100.0 * best / len(scores), float(threshold)


def squad_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], *,
                  null_odds: Mapping[str, float] | None = None,
                  span_predictions: Mapping[str, str] | None = None) -> dict[str, float]:
    """Score answers against SQuAD-style references (v1.1 and v2.0 alike).

    Args:
        predictions: Question id -> predicted answer (``""`` for no answer), e.g. ``predictions.json``.
        references: Question id -> its gold answer texts (empty for an unanswerable question).
        null_odds: Question id -> null score minus best span score; given, the ``best_*`` figures are added.
        span_predictions: Question id -> best non-null answer, used with ``null_odds`` for the ``best_*``
            figures (default: ``predictions``).

    Returns:
        ``exact``, ``f1`` and ``total`` over every question, the same for the ``HasAns_`` and ``NoAns_``
        subsets that are non-empty, and ``best_exact``, ``best_exact_thresh``, ``best_f1``,
        ``best_f1_thresh`` when ``null_odds`` is given. Scores are on the 0-100 scale.

    Raises:
        ValueError: A reference id has no prediction.
    """
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} question(s) have no prediction, e.g. {missing[:5]}; every reference id "
                         "needs an entry (\"\" for no answer).")
    exact, f1 = _raw_scores(predictions, references)
    has_answer = {qid: bool(_gold_answers(answers)[0]) for qid, answers in references.items()}
    result: dict[str, float] = _summary(exact, f1, list(references))
    for prefix, keep in (("HasAns", True), ("NoAns", False)):
        ids = [qid for qid in references if has_answer[qid] is keep]
        if ids:
            result.update({f"{prefix}_{k}": v for k, v in _summary(exact, f1, ids).items()})
    if null_odds is not None:
        spans = span_predictions if span_predictions is not None else predictions
        span_exact, span_f1 = _raw_scores(spans, references)
        answered = {qid: bool(spans[qid]) for qid in references}
        for name, raw in (("exact", span_exact), ("f1", span_f1)):
            best, threshold = best_thresholds(raw, null_odds, has_answer, answered)
            result[f"best_{name}"] = best
            result[f"best_{name}_thresh"] = threshold
    return result


def _summary(exact: Mapping[str, float], f1: Mapping[str, float], ids: Sequence[str]) -> dict[str, float]:
    total = len(ids)
    if total == 0:
        return {"exact": 0.0, "f1": 0.0, "total": 0}
    return {"exact": 100.0 * sum(exact[q] for q in ids) / total,
            "f1": 100.0 * sum(f1[q] for q in ids) / total, "total": total}
