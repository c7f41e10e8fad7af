"""One entry point for both zero-shot strategies.

Load the model a strategy needs, turn a spec into per-label probabilities for a dataset split, and score them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from tlnlp.tasks import classification_metrics
from tlnlp.zeroshot.args import ZeroShotError
from tlnlp.zeroshot.embeddings import load_encoder, score_embeddings
from tlnlp.zeroshot.nli import load_nli_model, score_nli
from tlnlp.zeroshot.options import ScoringOptions
from tlnlp.zeroshot.specs import ZeroShotSpec

__all__ = ["evaluate_zero_shot", "load_zero_shot_model", "similarity_probabilities", "zero_shot_probabilities"]

logger = logging.getLogger(__name__)


def similarity_probabilities(similarities: np.ndarray, multi_label: bool = False,
                             temperature: float = 0.05) -> np.ndarray:
    """Turn cosine similarities ``(rows, labels)`` into probabilities.

    Single-label: a softmax of ``similarity / temperature`` over the labels. Multi-label: a sigmoid of the
    similarity above the row's mean similarity, divided by ``temperature`` (labels closer than average are
    more likely than not).
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature!r} must be positive.")
    sims = np.asarray(similarities, dtype=np.float64) / temperature
    if multi_label:
        centred = sims - sims.mean(axis=1, keepdims=True)
        return 1.0 / (1.0 + np.exp(-centred))
    shifted = np.exp(sims - sims.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def load_zero_shot_model(strategy: str, model_args: Any, device: str = "auto") -> tuple[Any, Any]:
    """The model and tokenizer a strategy needs: an NLI classifier (``nli``) or a bare encoder (``embedding``).

    Raises:
        ZeroShotError: ``nli`` with a model whose config names no entailment class (with the fix).
    """
    common = {"device": device, "revision": model_args.model_revision, "cache_dir": model_args.cache_dir,
              "token": model_args.token, "trust_remote_code": model_args.trust_remote_code}
    if strategy == "embedding":
        return load_encoder(model_args.model_name_or_path, **common)
    try:
        return load_nli_model(model_args.model_name_or_path, **common)
    except ZeroShotError as err:
        raise ZeroShotError(
            f"model_name_or_path={model_args.model_name_or_path!r} is not an NLI model: {err} Train one offline "
            "with recipes/train_entailment.py, use a Hub NLI model (e.g. facebook/bart-large-mnli) online, or "
            "choose --strategy embedding."
        ) from None


def zero_shot_probabilities(
    strategy: str,
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    labels: Sequence[str],
    spec: ZeroShotSpec,
    options: ScoringOptions | None = None,
) -> np.ndarray:
    """Per-label probabilities ``(len(texts), len(labels))`` from either strategy and a spec.

    ``nli``: :func:`~tlnlp.zeroshot.nli.score_nli` (softmax over labels, or entailment vs contradiction per label
    when ``multi_label``). ``embedding``: :func:`~tlnlp.zeroshot.embeddings.score_embeddings` turned into
    probabilities by :func:`similarity_probabilities` (with ``options.temperature``). Several templates are
    averaged in both. ``options`` (default: ``ScoringOptions()``) holds batch size, truncation, multi-label,
    entailment index, temperature and the progress bar.
    """
    options = options or ScoringOptions()
    templates = list(spec.templates)
    if strategy == "nli":
        return score_nli(model, tokenizer, texts, labels, hypothesis_template=templates,
                         label_descriptions=spec.label_descriptions, options=options)
    if strategy == "embedding":
        sims = score_embeddings(model, tokenizer, texts, labels, templates=templates,
                                label_descriptions=spec.label_descriptions, options=options)
        return similarity_probabilities(sims, options.multi_label, options.temperature)
    raise ValueError(f"strategy={strategy!r} is not valid; choose nli or embedding.")


def evaluate_zero_shot(
    strategy: str,
    model: Any,
    tokenizer: Any,
    data: Any,
    spec: ZeroShotSpec,
    options: ScoringOptions | None = None,
    *,
    split: str = "test",
    threshold: float = 0.5,
) -> tuple[dict[str, float], np.ndarray]:
    """Score one split of a classification ``TaskData`` zero-shot; returns ``(metrics, probabilities)``.

    Metrics are those of a fine-tuned run (accuracy, macro F1, ... or the multi-label ones), without a prefix.
    ``options`` go to :func:`zero_shot_probabilities`, with ``multi_label`` taken from ``data``.
    """
    options = dataclasses.replace(options or ScoringOptions(), multi_label=data.multi_label)
    rows = data.splits[split]
    probs = zero_shot_probabilities(strategy, model, tokenizer, rows["text"], data.labels, spec, options)
    if data.multi_label:
        gold = np.zeros((len(rows), data.num_labels), dtype=np.int64)
        for i, ids in enumerate(rows["label"]):
            gold[i, list(ids)] = 1
        preds = (probs > threshold).astype(np.int64)
    else:
        gold, preds = np.asarray(rows["label"]), probs.argmax(axis=1)
    return classification_metrics(gold, preds, data.num_labels, data.multi_label), probs
