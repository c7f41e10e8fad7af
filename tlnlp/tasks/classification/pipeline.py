"""A ``text-classification`` pipeline over a saved classification run, with its real label names.

A run fitted on sentence embeddings (``--method feature_extraction``, ``--method setfit``) is no transformers
model; :class:`SentenceClassificationPipeline` answers for it in the pipeline's own output format.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from transformers import pipeline

from tlnlp.models.sentence_classifier import SentenceTransformerForSequenceClassification
from tlnlp.tasks.base import SavedModel

__all__ = ["SentenceClassificationPipeline", "classification_pipeline"]

logger = logging.getLogger(__name__)


def _truncation(saved: SavedModel, kwargs: dict[str, Any]) -> None:
    """Cut inputs where training cut them (the run's ``max_seq_length``), unless the caller chose."""
    max_len = saved.run_config().get("max_seq_length")
    if max_len and "max_length" not in kwargs:
        kwargs.setdefault("truncation", True)
        kwargs["max_length"] = int(max_len)


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
    as in training.

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
    _truncation(saved, kwargs)
    if saved.model is None:  # the folder's own config.json carries the labels: compare them with the run's
        _check_labels(saved)
    model = saved.model if saved.model is not None else saved.source
    tokenizer = saved.tokenizer if saved.tokenizer is not None else saved.source
    return pipeline("text-classification", model=model, tokenizer=tokenizer, device=device, **kwargs)
