"""Answer a QA run's validation and test questions, write the answers and score exactly those answers.

The reported EM/F1 are computed from exactly the answers written to ``predictions.json`` (validation, keys
``eval_*``) and ``test_predictions.json`` (test, keys ``test_*``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.tasks.base import Evaluation
from tlnlp.tasks.qa.features import QA_EVAL_COLUMNS
from tlnlp.tasks.qa.metrics import squad_metrics
from tlnlp.tasks.qa.postprocess import QAPredictions, postprocess_qa_predictions, write_qa_predictions

__all__ = ["evaluate_qa_run", "evaluate_qa_split"]

logger = logging.getLogger(__name__)

_FILE_PREFIX = {"eval": "", "test": "test_"}


def _finite(null_odds: dict[str, float | None] | None) -> dict[str, float] | None:
    """Null odds for the best-threshold search; a question with no span at all can only be left unanswered."""
    if null_odds is None:
        return None
    return {qid: (value if value is not None else float("inf")) for qid, value in null_odds.items()}


def evaluate_qa_split(
    trainer: Any, examples: Any, windows: Any, qa_args: Any, prefix: str, threshold: float,
    output_dir: Path | None = None,
) -> tuple[dict[str, float], QAPredictions | None]:
    """Predict the windows of one split, turn them into answers, write them and score them.

    Every process must call it (prediction is collective); only the main process post-processes and writes.

    Args:
        trainer: The Trainer holding the model.
        examples: The split's examples (``id``, ``context``, ``answers``).
        windows: Their evaluation windows (from :func:`tlnlp.tasks.qa.tokenize_qa`).
        qa_args: n-best size, answer length, SQuAD v2 switch (:class:`tlnlp.config.QAArgs`).
        prefix: ``"eval"`` (writes ``predictions.json``) or ``"test"`` (writes ``test_predictions.json``).
        threshold: The null-score difference threshold to answer with.
        output_dir: Where to write the answers (default: the Trainer's output_dir).

    Returns:
        The metrics (``{prefix}_exact``, ``{prefix}_f1``, ..., ``{prefix}_loss``) and, on the main process, the
        answers.
    """
    inputs = windows.remove_columns([c for c in QA_EVAL_COLUMNS if c in windows.column_names])
    output = trainer.predict(inputs, metric_key_prefix=prefix)
    metrics = {k: v for k, v in output.metrics.items() if k.startswith(f"{prefix}_")}
    if not trainer.is_world_process_zero():
        return metrics, None
    start, end = output.predictions[:2] if isinstance(output.predictions, tuple) else output.predictions
    answers = postprocess_qa_predictions(
        examples, windows, np.asarray(start), np.asarray(end), version_2_with_negative=qa_args.version_2_with_negative,
        n_best_size=qa_args.n_best_size, max_answer_length=qa_args.max_answer_length,
        null_score_diff_threshold=threshold)
    write_qa_predictions(output_dir or trainer.args.output_dir, answers, prefix=_FILE_PREFIX.get(prefix, f"{prefix}_"))
    references = {row["id"]: row["answers"]["text"] for row in examples}
    scores = squad_metrics(answers.predictions, references, null_odds=_finite(answers.null_odds),
                           span_predictions=answers.span_predictions)
    metrics.update({f"{prefix}_{k}": v for k, v in scores.items()})
    if not qa_args.version_2_with_negative:
        metrics[f"{prefix}_exact_match"] = scores["exact"]  # the Hugging Face example's SQuAD v1 key
    else:
        metrics[f"{prefix}_null_score_diff_threshold"] = threshold
    metrics[f"{prefix}_samples"] = len(examples)
    metrics[f"{prefix}_windows"] = len(windows)
    if answers.no_span:
        metrics[f"{prefix}_questions_without_span"] = len(answers.no_span)
    return metrics, answers


def evaluate_qa_run(ctx: Any, qa_args: Any) -> Evaluation:
    """Answer, write and score the validation and test questions of a trained QA run.

    With ``null_threshold_from_validation`` the test answers use validation's best null threshold.

    Args:
        ctx: The run's context: ``trained.trainer``, ``trained.datasets`` (the windows of every split, with their
            evaluation columns), ``data`` (:class:`~tlnlp.tasks.qa.data.QAData`) and ``output_dir``.
        qa_args: The run's :class:`tlnlp.config.QAArgs`.

    Returns:
        ``eval_*`` and ``test_*`` metrics (also saved as ``eval_results.json`` / ``test_results.json``).

    Raises:
        ValueError: An evaluation-only run (question answering scores a trained model's windows).
    """
    if ctx.trained is None:
        raise ValueError("Question answering scores the windows of a trained model; an evaluation-only run has none.")
    trainer, windows = ctx.trained.trainer, ctx.trained.datasets
    metrics: dict[str, float] = {}
    threshold = qa_args.null_score_diff_threshold
    for prefix, split in (("eval", "validation"), ("test", "test")):
        if split not in windows:
            continue
        if split == "test" and qa_args.null_threshold_from_validation and "eval_best_f1_thresh" in metrics:
            threshold = float(metrics["eval_best_f1_thresh"])
            logger.info("Test answers use validation's best null threshold %.4f.", threshold)
        found, _ = evaluate_qa_split(trainer, ctx.data.splits[split], windows[split], qa_args, prefix, threshold,
                                     Path(ctx.output_dir))
        trainer.log_metrics(prefix, found)
        trainer.save_metrics(prefix, found)
        metrics.update(found)
    return Evaluation(metrics)
