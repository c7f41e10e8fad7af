"""Load a causal language model (Hub id, local folder, ``.gguf`` file or bundled SmolLM2) for prompting."""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from tlnlp.config import ModelArgs
from tlnlp.models import load_tokenizer, resolve_model_path

__all__ = ["load_causal_lm"]

logger = logging.getLogger(__name__)


def load_causal_lm(model_args: ModelArgs, device: str = "cpu") -> tuple[Any, Any]:
    """Load ``AutoModelForCausalLM`` and its tokenizer, safetensors only, in eval mode on ``device``.

    ``bundled:smollm2`` (and its Hub id while offline) resolves to the cached safetensors conversion of the
    bundled GGUF file (converted on first use, see :mod:`tlnlp.models.gguf`).

    Args:
        model_args: Model name or path, revision, cache folder, token, remote-code permission, dtype.
        device: Where to put the model (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Returns:
        ``(model, tokenizer)``; the tokenizer has a pad token.

    Raises:
        OSError: No safetensors weights, or the model cannot be found.
        HubUnreachableError: A Hub id that is neither cached nor bundled while offline.
    """
    if model_args.init_from_scratch:
        raise ValueError("init_from_scratch=True: a randomly initialised language model cannot be prompted; "
                         "drop --init_from_scratch for few-shot evaluation.")
    path = resolve_model_path(model_args.model_name_or_path, revision=model_args.model_revision,
                              cache_dir=model_args.cache_dir, token=model_args.token)
    kwargs: dict[str, Any] = {"revision": model_args.model_revision, "cache_dir": model_args.cache_dir,
                              "token": model_args.token or None, "trust_remote_code": model_args.trust_remote_code,
                              "use_safetensors": True}
    if model_args.dtype not in (None, "auto"):
        kwargs["dtype"] = getattr(torch, model_args.dtype)
    elif model_args.dtype == "auto":
        kwargs["dtype"] = "auto"
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs).to(device).eval()
    tokenizer = load_tokenizer(model_args, path)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    logger.info("Loaded %s (%s, %.1fM parameters) on %s", model_args.model_name_or_path, type(model).__name__,
                sum(p.numel() for p in model.parameters()) / 1e6, device)
    return model, tokenizer
