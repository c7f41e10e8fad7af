"""Length-sorted batches with dynamic padding: the inference loop shared by the zero-shot scorers."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["eval_mode", "model_device", "pad_batch", "resolve_device", "run_sorted"]

logger = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None): the first CUDA device when there is one, else the CPU; otherwise ``torch.device``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Evaluation mode (dropout off) and ``torch.inference_mode`` inside; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def pad_batch(features: list[dict[str, list[int]]], tokenizer: PreTrainedTokenizerBase,
              device: torch.device) -> dict[str, torch.Tensor]:
    """Pad a list of tokenised rows to the longest one, on the tokenizer's padding side.

    ``input_ids`` are padded with the pad token, ``attention_mask`` with 0 and ``token_type_ids`` with the
    tokenizer's pad type id, exactly as ``tokenizer.pad`` does, without its per-call overhead.
    """
    longest = max(len(f["input_ids"]) for f in features)
    fill = {"input_ids": tokenizer.pad_token_id, "attention_mask": 0,
            "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0)}
    left = tokenizer.padding_side == "left"
    batch: dict[str, torch.Tensor] = {}
    for key, value in fill.items():
        if key not in features[0]:
            continue
        array = np.full((len(features), longest), value, dtype=np.int64)
        for row, feature in enumerate(features):
            ids = feature[key]
            if left:
                array[row, longest - len(ids):] = ids
            else:
                array[row, :len(ids)] = ids
        batch[key] = torch.from_numpy(array).to(device)
    return batch


def _forward_kwargs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> tuple[list[str], dict[str, Any]]:
    names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
    extra: dict[str, Any] = {}
    if "use_cache" in inspect.signature(model.forward).parameters:
        extra["use_cache"] = False  # classification heads need no key/value cache
    return names, extra


def run_sorted(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    features: list[dict[str, list[int]]],
    fn: Callable[[Any, dict[str, torch.Tensor]], torch.Tensor],
    *,
    batch_size: int = 32,
    progress: Any = None,
) -> np.ndarray:
    """Run ``fn(model_output, batch)`` over ``features`` in batches of similar length; results in input order.

    Rows are sorted longest first (an out-of-memory error shows at the first batch), each batch is padded to its
    own longest row, and everything runs under :func:`eval_mode`.

    Args:
        model: The model; batches go to its device.
        tokenizer: Gives the pad token, pad side and the model input names.
        features: Tokenised rows (``input_ids`` and friends, unpadded).
        fn: Maps the model output and the padded batch to a ``(batch, ...)`` tensor.
        batch_size: Rows per forward pass.
        progress: A tqdm bar to advance by the rows done (optional).

    Returns:
        ``fn``'s outputs stacked in the order of ``features`` (float32 numpy).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive number of rows.")
    if not features:
        return np.zeros((0,), dtype=np.float32)
    device = model_device(model)
    names, extra = _forward_kwargs(model, tokenizer)
    order = np.argsort([-len(f["input_ids"]) for f in features], kind="stable")
    outputs: list[np.ndarray] = []
    with eval_mode(model):
        for start in range(0, len(order), batch_size):
            rows = [features[i] for i in order[start:start + batch_size]]
            batch = pad_batch([{k: f[k] for k in names if k in f} for f in rows], tokenizer, device)
            result = fn(model(**batch, **extra), batch)
            outputs.append(result.float().cpu().numpy())
            if progress is not None:
                progress.update(len(rows))
    stacked = np.concatenate(outputs)
    restored = np.empty_like(stacked)
    restored[order] = stacked
    return restored
