"""A question-answering pipeline that answers exactly as training-time evaluation does.

transformers 5 no longer ships a ``question-answering`` pipeline. This one runs the same windows
(:func:`~tlnlp.tasks.qa.features.prepare_qa_features`) and the same post-processing
(:func:`~tlnlp.tasks.qa.postprocess.postprocess_qa_predictions`) as a tlnlp run, so a model answers a question
the same way in ``predictions.json`` and here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from tlnlp.tasks.base import SavedModel
from tlnlp.tasks.qa.features import prepare_qa_features
from tlnlp.tasks.qa.model import fix_peft_question_answering
from tlnlp.tasks.qa.postprocess import postprocess_qa_predictions

__all__ = ["RUN_SETTINGS", "QuestionAnsweringPipeline", "qa_pipeline"]

_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Settings of a run (``run_config.yaml``) that the pipeline answers with, as the run's predictions.json did.
RUN_SETTINGS = ("max_seq_length", "doc_stride", "n_best_size", "max_answer_length", "version_2_with_negative",
                "null_score_diff_threshold")


class QuestionAnsweringPipeline:
    """Answer questions about contexts with an extractive QA model.

    Args:
        model: A model with a question-answering head (start/end logits).
        tokenizer: Its fast tokenizer.
        max_seq_length: Tokens per window.
        doc_stride: Tokens shared by neighbouring windows.
        n_best_size: Candidates kept per window and per question.
        max_answer_length: Longest answer, in tokens.
        version_2_with_negative: Allow the empty answer (SQuAD v2).
        null_score_diff_threshold: SQuAD v2 threshold for answering ``""``.
        device: Where the model runs (default: where it is).
        batch_size: Windows per forward pass.

    Example:
        >>> qa = tlnlp.load_pipeline("runs/qa")  # doctest: +SKIP
        >>> qa(question="Who built the running machine?", context="Karl Drais built it in 1817.")  # doctest: +SKIP
        {'answer': 'Karl Drais', 'score': 0.93, 'start': 0, 'end': 10}
    """

    task = "question-answering"

    def __init__(self, model: Any, tokenizer: Any, *, max_seq_length: int = 384, doc_stride: int = 128,
                 n_best_size: int = 20, max_answer_length: int = 30, version_2_with_negative: bool = False,
                 null_score_diff_threshold: float = 0.0, device: int | str | torch.device | None = None,
                 batch_size: int = 16) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        if device is not None:
            self.model.to(torch.device(f"cuda:{device}") if isinstance(device, int) and device >= 0 else device)
        self.settings = {"max_seq_length": max_seq_length, "doc_stride": doc_stride}
        self.answer_settings = {"n_best_size": n_best_size, "max_answer_length": max_answer_length,
                                "version_2_with_negative": version_2_with_negative,
                                "null_score_diff_threshold": null_score_diff_threshold}
        self.batch_size = batch_size

    @staticmethod
    def _inputs(question: Any, context: Any, args: tuple[Any, ...]) -> tuple[list[dict[str, str]], bool]:
        if args:
            first = args[0]
            items = first if isinstance(first, list) else [first]
            return [dict(item) for item in items], not isinstance(first, list)
        if isinstance(question, list) or isinstance(context, list):
            questions = question if isinstance(question, list) else [question] * len(context)
            contexts = context if isinstance(context, list) else [context] * len(questions)
            if len(questions) != len(contexts):
                raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts; give one context per "
                                 "question, or one context for all.")
            return [{"question": q, "context": c} for q, c in zip(questions, contexts, strict=True)], False
        return [{"question": question, "context": context}], True

    def _logits(self, windows: dict[str, list[Any]]) -> tuple[np.ndarray, np.ndarray]:
        count = len(windows["input_ids"])
        width = max(len(ids) for ids in windows["input_ids"])
        start = np.full((count, width), -1e4, dtype=np.float32)
        end = np.full((count, width), -1e4, dtype=np.float32)
        device = next(self.model.parameters()).device
        keys = [k for k in _MODEL_INPUTS if k in windows]
        for lo in range(0, count, self.batch_size):
            rows = [{k: windows[k][i] for k in keys} for i in range(lo, min(count, lo + self.batch_size))]
            batch = self.tokenizer.pad(rows, return_tensors="pt")
            with torch.no_grad():
                out = self.model(**{k: v.to(device) for k, v in batch.items()})
            length = out.start_logits.shape[1]
            start[lo:lo + len(rows), :length] = out.start_logits.float().cpu().numpy()
            end[lo:lo + len(rows), :length] = out.end_logits.float().cpu().numpy()
        return start, end

    def __call__(self, *args: Any, question: str | list[str] | None = None, context: str | list[str] | None = None,
                 top_k: int = 1) -> dict[str, Any] | list[Any]:
        """Answer ``question`` about ``context`` (or a ``{"question", "context"}`` dict, or a list of them).

        Returns:
            For one question: ``{"answer", "score", "start", "end"}`` (``top_k`` > 1: a list of them, best
            first); for several, a list of those. ``score`` is the candidate's probability within its n-best
            list; the empty answer (SQuAD v2) has ``start == end == 0``.

        Raises:
            ValueError: A missing or empty question or context.
        """
        items, single = self._inputs(question, context, args)
        for item in items:
            if not str(item.get("question") or "").strip() or not str(item.get("context") or "").strip():
                raise ValueError("Each input needs a non-empty 'question' and 'context'.")
        examples = {"id": [str(i) for i in range(len(items))], "question": [i["question"] for i in items],
                    "context": [i["context"] for i in items],
                    "answers": [{"text": [], "answer_start": []} for _ in items]}
        windows = prepare_qa_features(examples, self.tokenizer, for_evaluation=True, **self.settings)
        start, end = self._logits(windows)
        found = postprocess_qa_predictions(examples, windows, start, end, **self.answer_settings)
        results = []
        for qid in examples["id"]:
            answer = found.predictions[qid]
            ranked = sorted(found.nbest[qid], key=lambda e: (e["text"] != answer, -e["score"]))[:max(1, top_k)]
            shaped = [{"answer": e["text"], "score": e["probability"],
                       "start": e["answer_start"] or 0, "end": (e["answer_start"] or 0) + len(e["text"])}
                      for e in ranked]
            shaped = shaped or [{"answer": "", "score": 0.0, "start": 0, "end": 0}]  # no span in any window
            results.append(shaped[0] if top_k == 1 else shaped)
        return results[0] if single else results


def qa_pipeline(saved: SavedModel, device: int | str | None, kwargs: dict[str, Any]) -> QuestionAnsweringPipeline:
    """A question-answering pipeline with the run's window and answer settings (from ``run_config.yaml``).

    Args:
        saved: The saved model (loaded already for an adapter run; else loaded here, safetensors only).
        device: Where the model runs.
        kwargs: Other :class:`QuestionAnsweringPipeline` arguments; they win over the run's settings.

    Returns:
        The pipeline; it answers as the run's ``predictions.json`` does.
    """
    model, tokenizer = saved.model, saved.tokenizer
    if model is None:
        model = AutoModelForQuestionAnswering.from_pretrained(saved.source, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(saved.source)
    run_config = saved.run_config()
    for name in RUN_SETTINGS:
        if run_config.get(name) is not None:
            kwargs.setdefault(name, run_config[name])
    return QuestionAnsweringPipeline(fix_peft_question_answering(model), tokenizer, device=device, **kwargs)
