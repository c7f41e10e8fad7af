"""tlnlp's SQuAD exact match and F1 as a local ``evaluate`` module (``evaluate.load(<this folder>)``).

It returns :func:`tlnlp.tasks.qa.squad_metrics`' dict (the official SQuAD v2.0 algorithm, 0-100 scale), so it
scores SQuAD v1.1 and v2.0 data alike, and works offline (``HF_HUB_OFFLINE=1``, ``HF_EVALUATE_OFFLINE=1``). The
``"default"`` configuration takes the inputs of the Hugging Face ``squad`` metric (answers only);
``config_name="squad_v2"`` those of ``squad_v2`` (each prediction also carries its ``no_answer_probability``).
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from tlnlp.tasks.qa.metrics import squad_metrics

_DESCRIPTION = """\
SQuAD exact match and F1 by the official v2.0 algorithm (answers normalised; an unanswerable question expects
""): exact, f1, total, HasAns_* and NoAns_* for the subsets present and, with config_name="squad_v2" (predictions
carry a no_answer_probability), best_exact, best_exact_thresh, best_f1, best_f1_thresh. Computed by tlnlp.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: One dict per question: "id", "prediction_text" ("" for no answer) and, for
        config_name="squad_v2", "no_answer_probability" (any score that grows with the chance of no answer).
    references: One dict per question: "id" and "answers" ({"text": [...], "answer_start": [...]}, empty
        lists for an unanswerable question).
    no_answer_threshold: squad_v2 only; given, a prediction whose no_answer_probability exceeds it answers ""
        (the official script's --na-prob-thresh); the best_* figures still use the answers as given.
Returns:
    The dict of tlnlp.tasks.qa.squad_metrics, scores on the 0-100 scale.
Examples:
    >>> squad = evaluate.load(tlnlp.tasks.metric_path("squad"))
    >>> squad.compute(predictions=[{"id": "q1", "prediction_text": "the Eiffel Tower"}],
    ...               references=[{"id": "q1", "answers": {"text": ["Eiffel Tower"], "answer_start": [4]}}])["exact"]
    100.0
"""

_ANSWERS = {"text": datasets.List(datasets.Value("string")), "answer_start": datasets.List(datasets.Value("int32"))}
_REFERENCES = {"id": datasets.Value("string"), "answers": _ANSWERS}
_PREDICTION = {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")}
_CONFIGS = ("default", "squad_v2")


class TlnlpSquad(evaluate.Metric):
    """Exact match and F1 of extractive answers, with (``"squad_v2"``) or without no-answer probabilities."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in _CONFIGS:
            raise ValueError(f"config_name={self.config_name!r} is not a configuration of tlnlp_squad; use one of: "
                             f"{', '.join(_CONFIGS)}.")
        prediction = dict(_PREDICTION)
        if self.config_name == "squad_v2":
            prediction["no_answer_probability"] = datasets.Value("float64")
        features = datasets.Features({"predictions": prediction, "references": _REFERENCES})
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
                                   features=features)

    def _compute(self, predictions: Any = None, references: Any = None,
                 no_answer_threshold: float | None = None) -> dict[str, float]:
        answers = {p["id"]: p["prediction_text"] for p in predictions}
        gold = {r["id"]: list(r["answers"]["text"]) for r in references}
        if self.config_name != "squad_v2":
            return squad_metrics(answers, gold)
        odds = {p["id"]: p["no_answer_probability"] for p in predictions}
        given = answers
        if no_answer_threshold is not None:
            answers = {qid: "" if odds[qid] > no_answer_threshold else text for qid, text in given.items()}
        return squad_metrics(answers, gold, null_odds=odds, span_predictions=given)
