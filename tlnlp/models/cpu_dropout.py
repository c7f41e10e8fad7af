"""Dropout on the CPU at a third of torch's cost: the same masks in law, drawn from cheaper random bits.

Training a small encoder on a CPU spends about a tenth of its time in dropout: torch's CPU kernel draws one
Bernoulli variable per element through a generic path (``bernoulli_``), about 3 ms for a 32 x 40 x 384 batch of
hidden states on 2 cores, while the matrix products around it run near the machine's peak. Here every 64-bit word
from torch's own generator (the one ``set_seed`` seeds and checkpoints save) gives four 16-bit numbers, and an
element is kept when its number is at or above ``p`` of the 16-bit range: a keep probability of ``1 - p`` exact to
1/65,536, kept elements scaled by ``1 / (1 - p)`` as torch does, and the same mask used by the backward pass.
That is about 1 ms for the same batch.

It covers the model's ``nn.Dropout`` modules and, for models whose attention runs through transformers' ``sdpa``
interface, the dropout on the attention probabilities: torch's SDPA falls back to its plain-math path on the CPU
whenever dropout is on, and the attention registered here computes that same math (scores, mask, softmax, dropout,
values; in fp32 for bf16 or fp16 inputs, as SDPA does) with the cheaper mask. Anything else (evaluation, a GPU
tensor, no dropout, a causal or grouped-query attention, a position bias) goes to transformers' ``sdpa`` unchanged,
so predictions are bit-identical and nothing saved changes: the attention choice is not written to ``config.json``.

Every Trainer run of tlnlp and SetFit's contrastive body training use it on a CPU; ``--cpu_dropout torch`` keeps
torch's own kernels (the random stream of a stock ``Trainer``).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn
from transformers.integrations.sdpa_attention import sdpa_attention_forward

__all__ = ["ATTENTION_NAME", "CpuDropout", "dropout_scale", "fast_cpu_dropout_wanted",
           "use_fast_cpu_dropout"]

logger = logging.getLogger(__name__)

#: The attention implementation name registered with transformers for the fast path.
ATTENTION_NAME = "tlnlp_cpu_sdpa"
_LEVELS = 1 << 16


def dropout_scale(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A dropout multiplier for a CPU tensor of ``shape``: ``1 / (1 - p)`` where kept, 0 where dropped.

    Args:
        shape: The input's shape.
        p: Probability of dropping an element, strictly between 0 and 1.
        dtype: The input's dtype.

    Returns:
        A tensor of ``shape`` and ``dtype``; elements are kept independently with probability
        ``1 - round(p * 65536) / 65536``.
    """
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)  # every bit random
    numbers = words.view(torch.int16)[:count].view(shape)
    threshold = round(p * _LEVELS) - _LEVELS // 2
    kept = torch.tensor(1.0 / (1.0 - p), dtype=dtype)
    return torch.where(numbers >= threshold, kept, torch.zeros((), dtype=dtype))


def _fast_applies(tensor: torch.Tensor, p: float, training: bool) -> bool:
    return training and 0.0 < p < 1.0 and tensor.device.type == "cpu" and tensor.dtype.is_floating_point


class CpuDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU training masks come from :func:`dropout_scale`; anything else is ``nn.Dropout``."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002  # nn.Dropout's own argument name
        """Drop with the cheap mask when training on a CPU; ``nn.Dropout.forward`` otherwise."""
        if not _fast_applies(input, self.p, self.training):
            return super().forward(input)
        scale = dropout_scale(input.shape, self.p, input.dtype)
        return input.mul_(scale) if self.inplace else input * scale


def _attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
               is_causal: bool | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """The ``sdpa`` attention of transformers, with the plain-math path and the cheap mask when CPU dropout is on."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    plain = (getattr(module, "num_key_value_groups", 1) > 1 or kwargs.get("position_bias") is not None
             or kwargs.get("softcap") is not None or (attention_mask is None and causal and query.shape[2] > 1))
    if plain or not _fast_applies(query, dropout, module.training):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    with torch.autocast("cpu", enabled=False):  # as SDPA's math: bf16/fp16 inputs are computed in fp32
        scores = torch.matmul(query.float(), key.float().transpose(-2, -1)) * scale
        if attention_mask is not None and attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        elif attention_mask is not None:
            scores = scores + attention_mask.float()
        probs = torch.softmax(scores, dim=-1)
        probs = probs * dropout_scale(probs.shape, dropout, probs.dtype)
        output = torch.matmul(probs, value.float()).to(query.dtype)
    return output.transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    # deferred: transformers' registries load only when a model is prepared for CPU training
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    if ATTENTION_NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(ATTENTION_NAME, _attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)  # the same masks sdpa gets


def _attention_dropout(config: object) -> float:
    return float(getattr(config, "attention_probs_dropout_prob", None) or getattr(config, "attention_dropout", 0) or 0)


def _use_fast_attention(model: nn.Module) -> bool:
    # deferred: a plain torch module never needs transformers here
    from transformers import PreTrainedModel

    pretrained = next((module for module in model.modules() if isinstance(module, PreTrainedModel)), None)
    config = getattr(pretrained, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa" or not _attention_dropout(config):
        return False
    _register_attention()
    try:
        pretrained.set_attn_implementation(ATTENTION_NAME)
    except (ValueError, NotImplementedError) as error:  # a model that refuses custom attention keeps torch's SDPA
        logger.info("Attention dropout stays on torch's kernel: %s", error)
        return False
    return True


def fast_cpu_dropout_wanted(train_args: object, device: torch.device | str) -> bool:
    """Whether training on ``device`` under ``train_args`` uses the cheap masks: a CPU, and not ``--cpu_dropout torch``.

    ``train_args`` may be any ``TrainingArguments`` (or None): without a ``cpu_dropout`` field the default, fast,
    holds.
    """
    return torch.device(device).type == "cpu" and getattr(train_args, "cpu_dropout", "fast") == "fast"


def use_fast_cpu_dropout(model: nn.Module) -> int:
    """Give ``model``'s dropout the cheap CPU masks; returns how many dropout sites this call changed.

    Each ``nn.Dropout`` module with ``p > 0`` becomes a :class:`CpuDropout` (same ``p``, same ``inplace``; no
    weights, so ``state_dict`` is unchanged), and a model on transformers' ``sdpa`` attention with attention
    dropout gets the attention registered here (one more site per model, counted once). Idempotent.
    """
    swapped = 0
    for module in model.modules():
        if type(module) is nn.Dropout and module.p > 0:
            module.__class__ = CpuDropout
            swapped += 1
    attention = _use_fast_attention(model)
    if swapped or attention:
        logger.info("CPU dropout: %d dropout module(s)%s draw masks from 16-bit random numbers "
                    "(--cpu_dropout torch keeps torch's kernel).", swapped, " and the attention" if attention else "")
    return swapped + int(attention)
