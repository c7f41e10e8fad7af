"""Sentence encoders through sentence-transformers: pooling, normalisation and length from the model's own files.

A sentence-transformers checkpoint (``modules.json``: e.g. the bundled all-MiniLM-L6-v2, BGE, E5) is loaded as it
says: its pooling (mean, CLS, ...), its normalisation, its prompts and its ``max_seq_length``. A plain transformers
model has no such files; it gets mean pooling over its token states, and :func:`load_sentence_encoder` logs that
so the choice is never silent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import hf_hub_download
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from tlnlp.config.args import ModelArgs
from tlnlp.models.loading import resolve_model_path

__all__ = ["SENTENCE_CONFIG", "LoadedEncoder", "describe_encoder", "has_sentence_config", "load_sentence_encoder"]

logger = logging.getLogger(__name__)

#: The file that makes a folder a sentence-transformers model.
SENTENCE_CONFIG = "modules.json"


@dataclass(frozen=True)
class LoadedEncoder:
    """A sentence encoder and how it pools.

    Attributes:
        encoder: The ``SentenceTransformer`` (``encoder.encode(texts)``; ``encoder.tokenizer``).
        pooling: One sentence for logs and cards on how a text becomes a vector.
        own_config: Whether the pooling came from the model's own sentence-transformers files.
    """

    encoder: SentenceTransformer
    pooling: str
    own_config: bool


def has_sentence_config(path: str, *, revision: str = "main", cache_dir: str | None = None,
                        token: str | None = None) -> bool:
    """Whether ``path`` (a local folder, or a Hub id in the cache or reachable) is a sentence-transformers model."""
    if Path(path).is_dir():
        return (Path(path) / SENTENCE_CONFIG).is_file()
    try:
        hf_hub_download(path, SENTENCE_CONFIG, revision=revision, cache_dir=cache_dir, token=token or None)
    except Exception:  # noqa: BLE001 - no such file (or no answer): the model is used as a plain transformers model
        return False
    return True


def describe_encoder(encoder: SentenceTransformer) -> str:
    """How ``encoder`` turns a text into a vector, e.g. ``"mean pooling, normalised, up to 256 tokens"``."""
    modes = [module.pooling_mode for module in encoder.modules() if isinstance(module, Pooling)]
    parts = [f"{' + '.join(str(m) for m in (modes[0] if isinstance(modes[0], (list, tuple)) else [modes[0]]))} "
             "pooling" if modes else "the model's own output vector"]
    if any(isinstance(module, Normalize) for module in encoder.modules()):
        parts.append("normalised")
    if encoder.max_seq_length:
        parts.append(f"up to {encoder.max_seq_length} tokens")
    prompts = {name: text for name, text in (getattr(encoder, "prompts", None) or {}).items() if text}
    if prompts:
        parts.append(f"prompts {prompts}")
    return ", ".join(parts)


def load_sentence_encoder(model_args: ModelArgs, device: str | None = None) -> LoadedEncoder:
    """Load ``model_args.model_name_or_path`` as a sentence encoder (safetensors only).

    Args:
        model_args: The model and how to load it (revision, cache, token, remote code).
        device: Where it runs (``"cpu"``, ``"cuda"``...); None: sentence-transformers' choice.

    Returns:
        The encoder and a sentence on its pooling. A model without sentence-transformers files gets mean pooling
        over its token states, and a warning says so.
    """
    common: dict[str, Any] = {"revision": model_args.model_revision, "cache_dir": model_args.cache_dir,
                              "token": model_args.token or None}
    path = resolve_model_path(model_args.model_name_or_path, **common)
    weights = {"use_safetensors": True, "trust_remote_code": model_args.trust_remote_code}
    if has_sentence_config(path, **common):
        encoder = SentenceTransformer(path, device=device, trust_remote_code=model_args.trust_remote_code,
                                      model_kwargs={"use_safetensors": True}, revision=model_args.model_revision,
                                      cache_folder=model_args.cache_dir, token=model_args.token or None)
        loaded = LoadedEncoder(encoder, f"{describe_encoder(encoder)} (the model's sentence-transformers config)",
                               True)
    else:
        body = Transformer(path, model_kwargs=weights,
                           config_kwargs={"trust_remote_code": model_args.trust_remote_code})
        encoder = SentenceTransformer(modules=[body, Pooling(body.get_embedding_dimension(), pooling_mode="mean")],
                                      device=device)
        loaded = LoadedEncoder(encoder, f"{describe_encoder(encoder)} (the default: {model_args.model_name_or_path} "
                                        "has no sentence-transformers config)", False)
        logger.warning("%s has no sentence-transformers config (%s): its sentence vectors are the mean of its token "
                       "states.", model_args.model_name_or_path, SENTENCE_CONFIG)
    logger.info("Sentence encoder %s: %s", model_args.model_name_or_path, loaded.pooling)
    return loaded
