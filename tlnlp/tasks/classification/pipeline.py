"""A ``text-classification`` pipeline over a saved classification run, with its real label names.

A run fitted on sentence embeddings (``--method feature_extraction``, ``--method setfit``) is no transformers
model; :class:`SentenceClassificationPipeline` answers for it in the pipeline's own output format. A run trained
with ``--long_text chunk`` gets a :class:`WindowClassificationPipeline`: a long text is scored by the mean of its
windows' logits, as the run scored its rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import torch
from transformers import pipeline
from transformers.pipelines import TextClassificationPipeline
from transformers.pipelines.base import ChunkPipeline

from tlnlp.models.sentence_classifier import SentenceTransformerForSequenceClassification
from tlnlp.tasks.base import SavedModel

__all__ = ["SentenceClassificationPipeline", "WindowClassificationPipeline", "classification_pipeline"]

logger = logging.getLogger(__name__)


def _truncation(saved: SavedModel, kwargs: dict[str, Any]) -> bool:
    """Cut inputs where training cut them (the run's ``max_seq_length``), unless the caller chose.

    Returns:
        Whether the run classified long texts by windows (``long_text: chunk``); then ``stride`` is set too.
    """
    settings = saved.run_config()
    max_len = settings.get("max_seq_length")
    if max_len and "max_length" not in kwargs:
        kwargs.setdefault("truncation", True)
        kwargs["max_length"] = int(max_len)
    if settings.get("long_text") != "chunk":
        return False
    stride = settings.get("long_text_stride")
    kwargs.setdefault("stride", int(stride) if stride is not None else int(kwargs.get("max_length") or 0) // 4)
    return True


class WindowClassificationPipeline(ChunkPipeline, TextClassificationPipeline):
    """A ``text-classification`` pipeline that scores a long text by the mean of its windows' logits.

    Each text is tokenised into windows of ``max_length`` tokens overlapping by ``stride`` (the tokenizer's
    ``return_overflowing_tokens``); the model scores every window, and the mean of the windows' logits goes through
    the usual softmax or sigmoid. A text that fits one window scores exactly as in the plain pipeline. Call it like
    the ``text-classification`` pipeline (a text or a list of texts, ``top_k``, ``function_to_apply``,
    ``batch_size``); text pairs are not windowed.
    """

    def preprocess(self, inputs: Any, truncation: bool = True, max_length: int | None = None, stride: int = 0,
                   **tokenizer_kwargs: Any) -> Iterator[dict[str, Any]]:
        """One model input per window of the text, the last one marked ``is_last``."""
        if not isinstance(inputs, str):
            raise ValueError("This run classifies long texts by windows (--long_text chunk): give texts, not text "
                             f"pairs or lists ({type(inputs).__name__}).")
        encoded = self.tokenizer([inputs], truncation=truncation, max_length=max_length, stride=stride,
                                 return_overflowing_tokens=True, **tokenizer_kwargs)
        encoded.pop("overflow_to_sample_mapping", None)
        count = len(encoded["input_ids"])
        for index in range(count):
            window = {key: torch.tensor([values[index]]) for key, values in encoded.items()}
            yield {**window, "is_last": index == count - 1}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        is_last = model_inputs.pop("is_last")
        return {"is_last": is_last, **super()._forward(model_inputs)}

    def postprocess(self, model_outputs: list[dict[str, Any]], **params: Any) -> Any:
        """The windows' mean logits, then the plain pipeline's answer (``top_k``, ``function_to_apply``)."""
        logits = torch.cat([output["logits"].float() for output in model_outputs]).mean(dim=0, keepdim=True)
        return super().postprocess({"logits": logits}, **params)


def _check_labels(saved: SavedModel) -> None:
    env = saved.folder / "environment.json" if saved.folder is not None else None
    if env is None or not env.is_file():
        return
    labels = json.loads(env.read_text(encoding="utf-8")).get("labels")
    if labels and [saved.config.id2label[i] for i in range(len(labels))] != labels:
        logger.warning("Label names in config.json differ from the run's labels in environment.json.")


class SentenceClassificationPipeline:
    """Call it like a ``text-classification`` pipeline: a text or a list, ``top_k`` labels with their scores.

    Attributes:
        model: The :class:`~tlnlp.models.sentence_classifier.SentenceTransformerForSequenceClassification`.
        task: ``"text-classification"``.
    """

    task = "text-classification"

    def __init__(self, model: SentenceTransformerForSequenceClassification, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = batch_size

    def __call__(self, inputs: str | list[str], top_k: int | None = 1, **kwargs: Any) -> Any:
        """Answer as the transformers pipeline does.

        Per text the best ``{"label", "score"}`` (``top_k=1``), or a ranked list of ``top_k`` of them (None: every
        label); a single text gets a list of its answers.
        """
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        probabilities = self.model.predict_proba(texts, batch_size=self.batch_size)
        answers = []
        for row in probabilities:
            order = row.argsort()[::-1][: top_k or len(row)]
            ranked = [{"label": self.model.labels[i], "score": float(row[i])} for i in order]
            answers.append(ranked[0] if top_k == 1 else ranked)
        return answers[0] if isinstance(inputs, str) and top_k != 1 else answers


def classification_pipeline(saved: SavedModel, device: int | str | None, kwargs: dict[str, Any]) -> Any:
    """A ``transformers`` text-classification pipeline for a saved run.

    Multi-label runs score each label with a sigmoid, and inputs are truncated to the run's ``max_seq_length``
    as in training; a run trained with ``--long_text chunk`` scores long texts by the mean of their windows'
    logits instead (:class:`WindowClassificationPipeline`).

    Args:
        saved: The saved model (loaded already for an adapter run; else loaded here from ``saved.source``).
        device: Passed to ``transformers.pipeline``.
        kwargs: Other ``transformers.pipeline`` arguments (updated in place with the run's settings).

    Returns:
        The pipeline.
    """
    if isinstance(saved.model, SentenceTransformerForSequenceClassification):
        return SentenceClassificationPipeline(saved.model.to(device if device not in (None, -1) else "cpu"),
                                              batch_size=int(kwargs.get("batch_size", 32)))
    if saved.config.problem_type == "multi_label_classification":
        kwargs.setdefault("function_to_apply", "sigmoid")
    if _truncation(saved, kwargs):
        kwargs.setdefault("pipeline_class", WindowClassificationPipeline)
    if saved.model is None:  # the folder's own config.json carries the labels: compare them with the run's
        _check_labels(saved)
    model = saved.model if saved.model is not None else saved.source
    tokenizer = saved.tokenizer if saved.tokenizer is not None else saved.source
    return pipeline("text-classification", model=model, tokenizer=tokenizer, device=device, **kwargs)
