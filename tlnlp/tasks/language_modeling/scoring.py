"""(Pseudo-)perplexity of held-out texts: the before/after measure of LM adaptation and of forgetting checks.

:func:`perplexity` (causal LMs) and :func:`pseudo_perplexity` (masked LMs, Salazar et al. 2020) score held-out
texts one text at a time and deterministically, so "before" and "after" numbers are comparable;
:func:`language_model_score` picks the right one for an objective.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from tlnlp.tasks.language_modeling.blocks import encode_texts

__all__ = ["language_model_score", "perplexity", "pseudo_perplexity"]

logger = logging.getLogger(__name__)

def _device_of(model: torch.nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return next(model.parameters()).device


def _batches(rows: list[Any], batch_size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), batch_size):
        yield rows[start:start + batch_size]


def _padded(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    return ids, mask


def _progress(total: int, desc: str, show: bool) -> Any:
    return tqdm(total=total, desc=desc, disable=not show, leave=False)


@torch.no_grad()
def perplexity(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *,
               max_length: int = 128, batch_size: int = 16, device: str | torch.device | None = None,
               show_progress: bool = False) -> float:
    """Perplexity of a causal LM on texts: ``exp`` of the mean negative log-likelihood per predicted token.

    Each text is scored on its own (truncated to ``max_length`` tokens; a BOS token is added where the tokenizer
    adds one); the first token of a text has no context and is not predicted. Deterministic (eval mode, no
    sampling), so two models can be compared on the same texts.

    Args:
        model: A causal LM (``AutoModelForCausalLM``).
        tokenizer: Its tokenizer.
        texts: Held-out texts.
        max_length: Tokens per text at most.
        batch_size: Texts per forward pass.
        device: Where to run (default: the model's device).
        show_progress: Show a tqdm bar.

    Returns:
        The perplexity (lower is better).

    Raises:
        ValueError: No text with at least two tokens.
    """
    dev = _device_of(model, device)
    encoded = [ids for ids in encode_texts(tokenizer, texts, max_length)["input_ids"] if len(ids) >= 2]
    if not encoded:
        raise ValueError("perplexity needs at least one text of two or more tokens.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    total_nll, total_tokens = 0.0, 0
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    with _progress(len(encoded), "perplexity", show_progress) as bar:
        for chunk in _batches(order, batch_size):
            ids, mask = _padded([encoded[i] for i in chunk], pad)
            logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            target = ids[:, 1:].to(dev)
            picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            valid = mask[:, 1:].to(dev).bool()
            total_nll -= picked[valid].double().sum().item()
            total_tokens += int(valid.sum().item())
            bar.update(len(chunk))
    model.train(was_training)
    return math.exp(total_nll / total_tokens)


def _masked_copies(encoded: dict[str, list[list[int]]], mask_id: int) -> list[tuple[list[int], int, int]]:
    copies = []
    for ids, special in zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True):
        for pos, (token, is_special) in enumerate(zip(ids, special, strict=True)):
            if not is_special:
                masked = list(ids)
                masked[pos] = mask_id
                copies.append((masked, pos, token))
    return copies


class _ScoreOnlyPositions:
    """Forward pre-hook on the output projection that keeps one position per row.

    The vocabulary projection (the costly part of a masked-LM head) then runs once per masked copy, not per token.
    """

    def __init__(self) -> None:
        self.positions: torch.Tensor | None = None

    def __call__(self, module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        hidden = args[0]
        if self.positions is None or hidden.dim() != 3:
            return None
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return (hidden[rows, self.positions.to(hidden.device)].unsqueeze(1), *args[1:])


@torch.no_grad()
def pseudo_perplexity(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *,
                      max_length: int = 128, batch_size: int = 64, device: str | torch.device | None = None,
                      show_progress: bool = False) -> float:
    """Pseudo-perplexity of a masked LM (Salazar et al. 2020): mask each token in turn and score it.

    For every non-special token of every text, a copy of the text with that one token replaced by the mask token
    is scored; the pseudo-log-likelihood is the sum of ``log p(token | rest)``, and the pseudo-perplexity is
    ``exp(-PLL / number of scored tokens)``. Costs one forward pass per token (batched); deterministic.

    Args:
        model: A masked LM (``AutoModelForMaskedLM``).
        tokenizer: Its tokenizer (must have a mask token).
        texts: Held-out texts.
        max_length: Tokens per text at most (special tokens included).
        batch_size: Masked copies per forward pass.
        device: Where to run (default: the model's device).
        show_progress: Show a tqdm bar.

    Returns:
        The pseudo-perplexity (lower is better).

    Raises:
        ValueError: The tokenizer has no mask token, or no text has a scorable token.
    """
    if tokenizer.mask_token_id is None:
        raise ValueError("pseudo_perplexity needs a tokenizer with a mask token (a masked LM).")
    dev = _device_of(model, device)
    copies = _masked_copies(encode_texts(tokenizer, texts, max_length, special_tokens_mask=True),
                            tokenizer.mask_token_id)
    if not copies:
        raise ValueError("pseudo_perplexity found no token to score (empty texts?).")
    copies.sort(key=lambda item: len(item[0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    total = 0.0
    keep = _ScoreOnlyPositions()
    projection = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    handle = projection.register_forward_pre_hook(keep) if isinstance(projection, torch.nn.Module) else None
    try:
        with _progress(len(copies), "pseudo-perplexity", show_progress) as bar:
            for chunk in _batches(copies, batch_size):
                ids, mask = _padded([item[0] for item in chunk], pad)
                rows = torch.arange(len(chunk), device=dev)
                positions = torch.tensor([item[1] for item in chunk], device=dev)
                keep.positions = positions
                logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
                picked = logits[:, 0] if logits.shape[1] == 1 else logits[rows, positions]
                targets = torch.tensor([item[2] for item in chunk], device=dev)
                logp = torch.log_softmax(picked.float(), dim=-1)
                total -= logp[rows, targets].double().sum().item()
                bar.update(len(chunk))
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    return math.exp(total / len(copies))


def language_model_score(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
                         objective: str, **kwargs: Any) -> dict[str, float]:
    """Perplexity for a causal LM, pseudo-perplexity for a masked LM, under a key that says which.

    Args:
        model: The language model.
        tokenizer: Its tokenizer.
        texts: Held-out texts.
        objective: ``"mlm"`` or ``"clm"``.
        **kwargs: Passed to :func:`perplexity` / :func:`pseudo_perplexity`.

    Returns:
        ``{"pseudo_perplexity": x}`` or ``{"perplexity": x}``.
    """
    if objective == "mlm":
        return {"pseudo_perplexity": pseudo_perplexity(model, tokenizer, texts, **kwargs)}
    return {"perplexity": perplexity(model, tokenizer, texts, **kwargs)}
