"""Embedding-similarity zero-shot: sentence embeddings of texts against label descriptions.

:func:`load_encoder` loads a sentence-transformers encoder (:func:`tlnlp.models.sentence.load_sentence_encoder`),
so the pooling, normalisation and length of a sentence-transformers checkpoint (the bundled all-MiniLM-L6-v2, BGE,
E5...) come from its own files; a plain transformers model gets mean pooling, and the log says so. Each label is
described by ``template.format(description)``; a text's score for a label is the cosine similarity of their
embeddings, averaged over the templates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tlnlp.config import ModelArgs
from tlnlp.models.sentence import load_sentence_encoder
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
    model: SentenceTransformer | PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    normalize: bool = True,
    show_progress: bool = False,
) -> np.ndarray:
    """Sentence embeddings of ``texts``: shape ``(len(texts), dim)``, unit length when ``normalize``.

    A ``SentenceTransformer`` (what :func:`load_encoder` gives) encodes as its own files say (pooling, prompts),
    with ``max_length`` capping its ``max_seq_length``. A plain transformers model is mean-pooled. Texts are truncated
    to ``max_length`` tokens (default: the model's maximum) and run in length-sorted, dynamically padded batches
    under inference mode.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("embed_texts needs at least one text.")
    if isinstance(model, SentenceTransformer):
        return _encode(model, texts, batch_size=batch_size, max_length=max_length, normalize=normalize,
                       show_progress=show_progress)
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


def _encode(encoder: SentenceTransformer, texts: list[str], *, batch_size: int, max_length: int | None,
            normalize: bool, show_progress: bool) -> np.ndarray:
    """``encoder.encode`` with its length capped at ``max_length`` for this call."""
    own = encoder.max_seq_length
    if max_length is not None:
        encoder.max_seq_length = min(max_length, own) if own else max_length
    try:
        with torch.inference_mode():
            vectors = encoder.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                     normalize_embeddings=normalize, show_progress_bar=show_progress)
    finally:
        encoder.max_seq_length = own
    return np.asarray(vectors, dtype=np.float32)


def score_embeddings(
    model: SentenceTransformer | PreTrainedModel,
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
        model: A sentence encoder from :func:`load_encoder`, or a transformers model (an encoder, or a model with
            a head whose backbone is used), mean-pooled.
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
) -> tuple[SentenceTransformer, PreTrainedTokenizerBase]:
    """A sentence encoder and its tokenizer for :func:`score_embeddings`; safetensors only.

    The encoder is a ``SentenceTransformer`` (:func:`tlnlp.models.sentence.load_sentence_encoder`): a
    sentence-transformers checkpoint pools, normalises and truncates as its files say; any other model gets mean
    pooling. ``encoder.tlnlp_pooling`` says which, in one sentence, for logs and cards.
    """
    args = ModelArgs(model_name_or_path=model_name_or_path, model_revision=revision, cache_dir=cache_dir, token=token,
                     trust_remote_code=trust_remote_code)
    loaded = load_sentence_encoder(args, device=str(resolve_device(device)))
    encoder = loaded.encoder.eval()
    encoder.tlnlp_pooling = loaded.pooling
    tokenizer = encoder.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return encoder, tokenizer
