"""Score a question-answering pipeline the Hugging Face way: ``evaluate``'s QA evaluator + tlnlp's SQuAD module.

transformers 5 ships no ``question-answering`` pipeline, so ``evaluate.evaluator("question-answering")`` refuses
the task name; the evaluator class itself (:class:`evaluate.QuestionAnsweringEvaluator`) works with any callable
that answers as that pipeline did, such as tlnlp's
:class:`~tlnlp.tasks.qa.pipeline.QuestionAnsweringPipeline` (``tlnlp.load_pipeline`` of a QA run). Scores come
from the local ``tlnlp_squad`` module: :func:`~tlnlp.tasks.qa.squad_metrics`' dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tlnlp.tasks.metric_modules import (
    TIMING_KEYS,
    accept_ready_pipelines,
    as_dataset,
    check_columns,
    load_metric,
)

if TYPE_CHECKING:
    import datasets

__all__ = ["evaluate_qa_pipeline"]

#: Candidates asked of the pipeline per question, to find the empty answer's probability among them.
_TOP_K = 1000


class _EvaluatorAnswerer:
    """The pipeline as the evaluator calls it: columns in, one ``{"answer", "score"}`` per question out.

    ``score`` is the probability of the empty answer among the pipeline's ranked candidates (0 when it is not
    one of them), which the evaluator passes on as ``no_answer_probability`` for SQuAD v2 data.
    """

    task = "question-answering"

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def __call__(self, question: Any, context: Any, **_evaluator_kwargs: Any) -> list[dict[str, Any]]:
        ranked = self.pipe(question=list(question), context=list(context), top_k=_TOP_K)
        answers = []
        for candidates in ranked:
            candidates = candidates if isinstance(candidates, list) else [candidates]
            null = next((float(c["score"]) for c in candidates if c["answer"] == ""), 0.0)
            answers.append({"answer": candidates[0]["answer"], "score": null})
        return answers


def _has_unanswerable(data: datasets.Dataset, label_column: str) -> bool:
    return any(len(answers["text"]) == 0 for answers in data[label_column])


def evaluate_qa_pipeline(pipe: Any, dataset: Any, *, question_column: str = "question",
                         context_column: str = "context", id_column: str = "id", label_column: str = "answers",
                         squad_v2_format: bool | None = None, **evaluator_kwargs: Any) -> dict[str, Any]:
    """Score an extractive question-answering pipeline on SQuAD-style rows with ``evaluate``'s QA evaluator.

    Args:
        pipe: tlnlp's :class:`~tlnlp.tasks.qa.pipeline.QuestionAnsweringPipeline` (``tlnlp.load_pipeline`` of a QA
            run), or a callable that answers ``pipe(question=[...], context=[...], top_k=k)`` with one ranked list
            of ``{"answer", "score"}`` per question, best first.
        dataset: A ``datasets.Dataset``, a dict of columns or a list of rows.
        question_column: Column of the questions.
        context_column: Column of the contexts.
        id_column: Column of the question ids.
        label_column: Column of the answers, ``{"text": [...], "answer_start": [...]}`` (empty lists for an
            unanswerable question).
        squad_v2_format: Whether to score as SQuAD v2 (with each prediction's no-answer probability, which adds
            the ``best_*`` figures); None: when some question has no answer.
        **evaluator_kwargs: Other arguments of the evaluator's ``compute``, e.g. ``strategy="bootstrap"``.

    Returns:
        :func:`~tlnlp.tasks.qa.squad_metrics`' dict (``exact``, ``f1``, ``total``, ``HasAns_*``, ``NoAns_*``, and
        for SQuAD v2 ``best_*`` with thresholds on the no-answer probability). The evaluator's timings are left
        out.

    Raises:
        ValueError: A missing column.
    """
    import evaluate  # deferred: evaluate imports datasets and scipy; importing tlnlp.tasks stays light

    data = check_columns(as_dataset(dataset), question_column, context_column, id_column, label_column)
    if squad_v2_format is None:
        squad_v2_format = _has_unanswerable(data, label_column)
    metric = load_metric("squad", config_name="squad_v2" if squad_v2_format else None, keep_in_memory=True)
    result = accept_ready_pipelines(evaluate.QuestionAnsweringEvaluator()).compute(
        model_or_pipeline=_EvaluatorAnswerer(pipe), data=data, metric=metric, question_column=question_column,
        context_column=context_column, id_column=id_column, label_column=label_column,
        squad_v2_format=squad_v2_format, **evaluator_kwargs)
    return {key: value for key, value in result.items() if key not in TIMING_KEYS}
