"""Log-likelihood of candidate continuations under a causal LM, with the shared prompt prefix encoded once.

:func:`score_continuations` returns, for every example and every candidate, the summed log-probability of the
candidate's tokens after ``prefix + context``. Two paths compute the same numbers:

* shared prefix (default): the prefix runs through the model once; its key/value cache is copied for each
  batch of examples (the original is never changed), the batch's contexts run on top of it (left-padded, with
  position ids that continue the prefix), and the next-token distribution at each context's end scores every
  candidate's first token. Candidates of several tokens run once more, on the context cache, for the rest.
* naive: one full ``prefix + context + candidate`` sequence per example and candidate, batched.

The naive path is the reference the tests and ``benchmarks/few_shot_speed.py`` compare against.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

__all__ = ["score_continuations"]

logger = logging.getLogger(__name__)


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _accepts(model: Any, name: str) -> bool:
    return name in inspect.signature(model.forward).parameters


def _run(model: Any, cache: DynamicCache | None = None, keep: int | None = None, **inputs: Any) -> torch.Tensor:
    """Forward pass; returns the logits of the last ``keep`` positions (all when None).

    The cache goes in as ``cache`` (transformers >= 5.2x) or ``past_key_values`` (older models); logits are
    computed only where needed when the model takes ``logits_to_keep``.
    """
    if cache is not None:
        inputs["cache" if _accepts(model, "cache") else "past_key_values"] = cache
        inputs["use_cache"] = True
    if keep is not None and _accepts(model, "logits_to_keep"):
        inputs["logits_to_keep"] = keep
    logits = model(**inputs).logits
    return logits if keep is None else logits[:, -keep:]


def _left_pad(seqs: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only real tokens (padding gets the previous real position)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _copy_cache(model: Any, source: DynamicCache | None, index: torch.Tensor | int) -> DynamicCache:
    """A new cache holding rows ``index`` of ``source`` (an int: its one row repeated); ``source`` is unchanged.

    The new cache's layers are written by ``torch.cat`` when it is filled, so views are enough here.
    """
    if source is None or source.get_seq_length() == 0:
        return DynamicCache(config=model.config)
    if isinstance(index, int):
        layers = [(layer.keys.expand(index, -1, -1, -1), layer.values.expand(index, -1, -1, -1))
                  for layer in source.layers]
    else:
        layers = [(layer.keys[index], layer.values[index]) for layer in source.layers]
    return DynamicCache(ddp_cache_data=layers, config=model.config)


def _encode_prefix(model: Any, prefix: Sequence[int], device: torch.device) -> DynamicCache | None:
    if not prefix:
        return None
    cache = DynamicCache(config=model.config)
    ids = torch.tensor([list(prefix)], device=device)
    _run(model, cache, keep=1, input_ids=ids, attention_mask=torch.ones_like(ids))
    return cache


def _score_batch_shared(model: Any, cache: DynamicCache | None, plen: int, contexts: Sequence[Sequence[int]],
                        continuations: Sequence[Sequence[int]], batch_size: int) -> np.ndarray:
    """Scores of one batch of contexts against every continuation, on a copy of the prefix cache."""
    device = _device(model)
    ids, qmask = _left_pad(contexts, device)
    rows = len(contexts)
    mask = torch.cat([torch.ones((rows, plen), dtype=torch.long, device=device), qmask], dim=1)
    batch_cache = _copy_cache(model, cache, rows)
    logits = _run(model, batch_cache, keep=1, input_ids=ids, attention_mask=mask,
                  position_ids=_positions(mask)[:, plen:])
    first = torch.log_softmax(logits[:, -1].float(), dim=-1)
    scores = first[:, [c[0] for c in continuations]].double()
    multi = [j for j, c in enumerate(continuations) if len(c) > 1]
    if multi:
        scores[:, multi] += _score_tails(model, batch_cache, mask, [continuations[j] for j in multi], batch_size)
    return scores.cpu().numpy()


def _score_tails(model: Any, cache: DynamicCache, mask: torch.Tensor, conts: Sequence[Sequence[int]],
                 batch_size: int) -> torch.Tensor:
    """Log-probability of tokens 2.. of each multi-token continuation, for every row of ``cache``."""
    device = mask.device
    rows, width = mask.shape[0], max(len(c) - 1 for c in conts)
    pairs = [(r, j) for r in range(rows) for j in range(len(conts))]
    out = torch.zeros((rows, len(conts)), dtype=torch.float64, device=device)
    start_pos = mask.sum(dim=1)  # real tokens before the continuation: prefix + context
    for lo in range(0, len(pairs), batch_size):
        chunk = pairs[lo: lo + batch_size]
        index = torch.tensor([r for r, _ in chunk], device=device)
        inputs = torch.zeros((len(chunk), width), dtype=torch.long, device=device)
        cmask = torch.zeros_like(inputs)
        for k, (_, j) in enumerate(chunk):
            tail = list(conts[j][:-1])
            inputs[k, : len(tail)] = torch.tensor(tail, device=device)
            cmask[k, : len(tail)] = 1
        positions = start_pos[index, None] + torch.arange(width, device=device)[None, :]
        logits = _run(model, _copy_cache(model, cache, index), input_ids=inputs,
                      attention_mask=torch.cat([mask[index], cmask], dim=1), position_ids=positions)
        logp = torch.log_softmax(logits.float(), dim=-1)
        for k, (r, j) in enumerate(chunk):
            targets = torch.tensor(conts[j][1:], device=device)
            out[r, j] = logp[k, torch.arange(len(targets), device=device), targets].double().sum()
    return out


def _score_naive(model: Any, prefix: Sequence[int], contexts: Sequence[Sequence[int]],
                 continuations: Sequence[Sequence[int]], batch_size: int, progress: Any) -> np.ndarray:
    device = _device(model)
    out = np.zeros((len(contexts), len(continuations)))
    pairs = sorted(((i, j) for i in range(len(contexts)) for j in range(len(continuations))),
                   key=lambda p: (len(contexts[p[0]]) + len(continuations[p[1]]), p))  # little padding
    remaining = [len(continuations)] * len(contexts)
    for lo in range(0, len(pairs), batch_size):
        chunk = pairs[lo: lo + batch_size]
        seqs = [list(prefix) + list(contexts[i]) + list(continuations[j]) for i, j in chunk]
        ids, mask = _left_pad(seqs, device)
        keep = max(len(continuations[j]) for _, j in chunk) + 1
        logits = _run(model, keep=keep, input_ids=ids, attention_mask=mask, position_ids=_positions(mask))
        logp = torch.log_softmax(logits.float(), dim=-1)
        for k, (i, j) in enumerate(chunk):
            cont = continuations[j]
            steps = torch.arange(keep - 1 - len(cont), keep - 1, device=device)
            out[i, j] = logp[k, steps, torch.tensor(cont, device=device)].double().sum().item()
        if progress is not None:
            for i, _ in chunk:
                remaining[i] -= 1
            progress.update(sum(1 for i in {i for i, _ in chunk} if remaining[i] == 0))
    return out


@torch.inference_mode()
def score_continuations(model: Any, prefix: Sequence[int], contexts: Sequence[Sequence[int]],
                        continuations: Sequence[Sequence[int]], *, batch_size: int = 16,
                        shared_prefix: bool = True, progress: Any = None) -> np.ndarray:
    """Summed log-likelihood of every continuation after ``prefix + context``, for every context.

    Args:
        model: A causal LM (``AutoModelForCausalLM``), in eval mode, on the device to use.
        prefix: Ids shared by every sequence (instruction and demonstrations); may be empty.
        contexts: Ids of each example's query (non-empty).
        continuations: Ids of each candidate (non-empty), scored after every context.
        batch_size: Sequences per forward pass (examples in the shared path, example-candidate pairs in the
            naive path).
        shared_prefix: Encode the prefix once and reuse its key/value cache (True), or run every full sequence
            (False; the reference).
        progress: A tqdm-like object whose ``update(n)`` is called with the number of examples finished.

    Returns:
        ``len(contexts) x len(continuations)`` float64 array of summed log-probabilities.

    Raises:
        ValueError: An empty context or continuation.
    """
    if not contexts:
        return np.zeros((0, len(continuations)))
    if any(len(c) == 0 for c in contexts) or not continuations or any(len(c) == 0 for c in continuations):
        raise ValueError("Every context and continuation needs at least one token.")
    if not shared_prefix:
        return _score_naive(model, prefix, contexts, continuations, batch_size, progress)
    cache = _encode_prefix(model, prefix, _device(model))
    order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]))  # similar lengths: little padding
    out = np.zeros((len(contexts), len(continuations)))
    for lo in range(0, len(order), batch_size):
        rows = order[lo: lo + batch_size]
        out[rows] = _score_batch_shared(model, cache, len(prefix), [contexts[i] for i in rows], continuations,
                                        batch_size)
        if progress is not None:
            progress.update(len(rows))
    return out
