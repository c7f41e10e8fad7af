"""Embedding-similarity zero-shot: mean-pooled sentence embeddings of texts against label descriptions.

Works with any encoder, and with the bundled all-MiniLM-L6-v2 as it is (it was trained for mean-pooled
sentence embeddings). Each label is described by ``template.format(description)``; a text's score for a label
is the cosine similarity of their embeddings, averaged over the templates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, PreTrainedModel, PreTrainedTokenizerBase

from tlnlp.config import ModelArgs
from tlnlp.models import load_tokenizer, resolve_model_path
from tlnlp.zeroshot.batching import resolve_device, run_sorted
from tlnlp.zeroshot.options import ScoringOptions
from tlnlp.zeroshot.specs import check_template

__all__ = ["embed_texts", "load_encoder", "mean_pool", "score_embeddings"]

logger = logging.getLogger(__name__)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors where ``attention_mask`` is 1: ``(batch, tokens, dim)`` -> ``(batch, dim)``."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def _encoder(model: PreTrainedModel) -> PreTrainedModel:
    """The bare transformer of a model with a head (a ``*ForSequenceClassification`` -> its backbone)."""
    base = getattr(model, "base_model", None)
    return base if isinstance(base, torch.nn.Module) else model


def embed_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    normalize: bool = True,
    show_progress: bool = False,
) -> np.ndarray:
    """Mean-pooled embeddings of ``texts``: shape ``(len(texts), hidden)``, unit length when ``normalize``.

    Texts are truncated to ``max_length`` tokens (default: the tokenizer's maximum) and run in length-sorted,
    dynamically padded batches under inference mode.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("embed_texts needs at least one text.")
    encoder = _encoder(model)
    kwargs: dict[str, Any] = {"truncation": True, "padding": False}
    if max_length is not None:
        kwargs["max_length"] = max_length
    encoded = tokenizer(texts, **kwargs)
    features = [{k: encoded[k][i] for k in encoded} for i in range(len(texts))]

    def pool(output: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return mean_pool(output.last_hidden_state, batch["attention_mask"])

    with tqdm(total=len(texts), desc="Embedding", unit="text", disable=not show_progress) as bar:
        vectors = run_sorted(encoder, tokenizer, features, pool, batch_size=batch_size, progress=bar)
    if normalize:
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return vectors


def score_embeddings(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    templates: str | Sequence[str] = "{}",
    label_descriptions: Mapping[str, str] | None = None,
    options: ScoringOptions | None = None,
) -> np.ndarray:
    """Cosine similarity of each text to each label's description: shape ``(len(texts), len(labels))``.

    Args:
        model: An encoder (``AutoModel``), or a model with a head (its backbone is used).
        tokenizer: Its tokenizer.
        texts: Texts to classify.
        labels: Candidate class names, in the column order of the result.
        templates: One or several templates with a ``{}`` slot that turn a description into the label's text;
            the similarities of the templates are averaged.
        label_descriptions: Class name -> description (default: the class name).
        options: Reads ``batch_size`` (texts per forward pass), ``max_length`` (truncate texts to this many
            tokens; default: the tokenizer's maximum) and ``show_progress`` (default: ``ScoringOptions()``).

    Returns:
        Similarities in [-1, 1] (higher = more likely); the arg-max over labels is the prediction.
    """
    templates = [templates] if isinstance(templates, str) else list(templates)
    labels = list(labels)
    if not labels or not templates:
        raise ValueError(f"score_embeddings needs labels and templates; got {len(labels)} labels, "
                         f"{len(templates)} templates.")
    for template in templates:
        check_template(template, "template")
    descriptions = label_descriptions or {}
    label_texts = [t.format(descriptions.get(label, label)) for t in templates for label in labels]
    options = options or ScoringOptions()
    label_vectors = embed_texts(model, tokenizer, label_texts, batch_size=options.batch_size,
                                max_length=options.max_length)
    text_vectors = embed_texts(model, tokenizer, texts, batch_size=options.batch_size,
                               max_length=options.max_length, show_progress=options.show_progress)
    sims = text_vectors.astype(np.float64) @ label_vectors.astype(np.float64).T
    return sims.reshape(len(text_vectors), len(templates), len(labels)).mean(axis=1)


def load_encoder(
    model_name_or_path: str = "bundled:minilm",
    *,
    device: str | torch.device | None = "auto",
    revision: str = "main",
    cache_dir: str | None = None,
    token: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load an encoder (no task head) and its tokenizer for :func:`score_embeddings`; safetensors only."""
    args = ModelArgs(model_name_or_path=model_name_or_path, revision=revision, cache_dir=cache_dir, token=token,
                     trust_remote_code=trust_remote_code)
    path = resolve_model_path(model_name_or_path, revision=revision, cache_dir=cache_dir, token=token)
    model = AutoModel.from_pretrained(path, use_safetensors=True, revision=revision, cache_dir=cache_dir,
                                      token=token or None, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(args, path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.to(resolve_device(device)).eval()
    return model, tokenizer
